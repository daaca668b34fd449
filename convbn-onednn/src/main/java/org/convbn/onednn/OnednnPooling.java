package org.convbn.onednn;

import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_DST;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_SRC;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DST;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SRC;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_WORKSPACE;
import static org.convbn.onednn.OnednnContext.dims;

import net.jcip.annotations.NotThreadSafe;
import org.bytedeco.dnnl.global.dnnl.algorithm;
import org.bytedeco.dnnl.global.dnnl.prop_kind;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.pooling_backward;
import org.bytedeco.dnnl.pooling_forward;
import org.convbn.nd4j.kernel.Kernels.Pooled;
import org.convbn.nd4j.kernel.Layout;
import org.convbn.onednn.OnednnContext.Key;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Pooling of {@link OnednnKernels}: max pooling with oneDNN's argmax workspace, and global average pooling. */
@NotThreadSafe
final class OnednnPooling {
    private final OnednnContext ctx;

    OnednnPooling(OnednnContext ctx) {
        this.ctx = ctx;
    }

    private long[] poolPadR(long[] xs, long[] ys, int kernel, int stride, int pad) {
        return new long[] {
            Math.max(0, (ys[2] - 1) * stride + kernel - xs[2] - pad),
            Math.max(0, (ys[3] - 1) * stride + kernel - xs[3] - pad)
        };
    }

    private pooling_forward.primitive_desc poolDesc(
            memory.desc src, memory.desc dst, algorithm alg, long[] kernel, long[] strides, long[] padL, long[] padR) {
        pooling_forward.desc d =
                new pooling_forward.desc(prop_kind.forward_training, alg, src, dst, strides, kernel, padL, padR);
        return new pooling_forward.primitive_desc(d, Dnnl.userScratchpad(), Dnnl.ENGINE);
    }

    Pooled maxPool(INDArray x, int kernel, int stride, int pad) {
        long[] xs = Layout.logicalShape(x);
        long[] ys = {xs[0], xs[1], (xs[2] + 2L * pad - kernel) / stride + 1, (xs[3] + 2L * pad - kernel) / stride + 1};
        Layout layout = Layout.of(x);
        long[] k = {kernel, kernel};
        long[] s = {stride, stride};
        long[] pl = {pad, pad};
        long[] pr = poolPadR(xs, ys, kernel, stride, pad);
        Dnnl.Prepared p = ctx.prepared(new Key("maxpool fwd", dims(xs), layout, kernel, stride, pad), () -> {
            pooling_forward.primitive_desc pd = poolDesc(
                    Dnnl.featureMap(xs, layout), Dnnl.featureMap(ys, layout), algorithm.pooling_max, k, s, pl, pr);
            return new Dnnl.Prepared(new pooling_forward(pd), pd)
                    .arg(DNNL_ARG_SRC, pd.src_desc())
                    .arg(DNNL_ARG_DST, pd.dst_desc())
                    .arg(DNNL_ARG_WORKSPACE, pd.workspace_desc());
        });
        INDArray src = ctx.dense(x);
        INDArray y = ctx.arena().allocate(DataType.FLOAT, layout.physicalShape(ys));
        INDArray ws = ctx.buffer(p.bytes(DNNL_ARG_WORKSPACE)); // opaque bytes, in the float pool with everything else
        p.bind(DNNL_ARG_SRC, src);
        p.bind(DNNL_ARG_DST, y);
        p.bind(DNNL_ARG_WORKSPACE, ws);
        ctx.run(p);
        ctx.releaseIfCopy(src, x);
        return new Pooled(y, ws, xs, layout);
    }

    INDArray maxPoolBackward(INDArray x, Pooled pooled, INDArray g, int kernel, int stride, int pad) {
        long[] xs = pooled.inputShape(); // x itself is not read: the workspace holds the argmax
        long[] ys = Layout.logicalShape(pooled.output());
        Layout layout = pooled.inputLayout();
        long[] k = {kernel, kernel};
        long[] s = {stride, stride};
        long[] pl = {pad, pad};
        long[] pr = poolPadR(xs, ys, kernel, stride, pad);
        Dnnl.Prepared p = ctx.prepared(new Key("maxpool bwd", dims(xs), layout, kernel, stride, pad), () -> {
            memory.desc src = Dnnl.featureMap(xs, layout);
            memory.desc dst = Dnnl.featureMap(ys, layout);
            pooling_forward.primitive_desc hint = poolDesc(src, dst, algorithm.pooling_max, k, s, pl, pr);
            pooling_backward.desc d = new pooling_backward.desc(algorithm.pooling_max, src, dst, s, k, pl, pr);
            pooling_backward.primitive_desc pd =
                    new pooling_backward.primitive_desc(d, Dnnl.userScratchpad(), Dnnl.ENGINE, hint);
            return new Dnnl.Prepared(new pooling_backward(pd), pd)
                    .arg(DNNL_ARG_DIFF_DST, pd.diff_dst_desc())
                    .arg(DNNL_ARG_DIFF_SRC, pd.diff_src_desc())
                    .arg(DNNL_ARG_WORKSPACE, pd.workspace_desc());
        });
        INDArray diffDst = ctx.as(g, layout);
        INDArray dx = ctx.arena().allocate(DataType.FLOAT, layout.physicalShape(xs));
        p.bind(DNNL_ARG_DIFF_DST, diffDst);
        p.bind(DNNL_ARG_DIFF_SRC, dx);
        p.bind(DNNL_ARG_WORKSPACE, pooled.workspace());
        ctx.run(p);
        ctx.releaseIfCopy(diffDst, g);
        return dx;
    }

    INDArray globalAveragePool(INDArray x) {
        long[] xs = Layout.logicalShape(x);
        Layout layout = Layout.of(x);
        long[] ys = {xs[0], xs[1], 1, 1};
        Dnnl.Prepared p = ctx.prepared(new Key("avgpool fwd", dims(xs), layout), () -> {
            pooling_forward.primitive_desc pd = poolDesc(
                    Dnnl.featureMap(xs, layout),
                    Dnnl.featureMap(ys, layout),
                    algorithm.pooling_avg_exclude_padding,
                    new long[] {xs[2], xs[3]},
                    new long[] {1, 1},
                    new long[] {0, 0},
                    new long[] {0, 0});
            return new Dnnl.Prepared(new pooling_forward(pd), pd)
                    .arg(DNNL_ARG_SRC, pd.src_desc())
                    .arg(DNNL_ARG_DST, pd.dst_desc());
        });
        INDArray src = ctx.dense(x);
        // [N, C, 1, 1] in either layout lies in memory as a plain [N, C] (C divisible by 8 when blocked).
        INDArray y = ctx.arena().allocate(DataType.FLOAT, xs[0], xs[1]);
        p.bind(DNNL_ARG_SRC, src);
        p.bind(DNNL_ARG_DST, y);
        ctx.run(p);
        ctx.releaseIfCopy(src, x);
        return y;
    }

    INDArray globalAveragePoolBackward(INDArray g, long[] logicalShape, Layout layout) {
        long[] xs = logicalShape.clone();
        long[] ys = {xs[0], xs[1], 1, 1};
        Dnnl.Prepared p = ctx.prepared(new Key("avgpool bwd", dims(xs), layout), () -> {
            memory.desc src = Dnnl.featureMap(xs, layout);
            memory.desc dst = Dnnl.featureMap(ys, layout);
            long[] k = {xs[2], xs[3]};
            long[] zero = {0, 0};
            long[] one = {1, 1};
            pooling_forward.primitive_desc hint =
                    poolDesc(src, dst, algorithm.pooling_avg_exclude_padding, k, one, zero, zero);
            pooling_backward.desc d =
                    new pooling_backward.desc(algorithm.pooling_avg_exclude_padding, src, dst, one, k, zero, zero);
            pooling_backward.primitive_desc pd =
                    new pooling_backward.primitive_desc(d, Dnnl.userScratchpad(), Dnnl.ENGINE, hint);
            return new Dnnl.Prepared(new pooling_backward(pd), pd)
                    .arg(DNNL_ARG_DIFF_DST, pd.diff_dst_desc())
                    .arg(DNNL_ARG_DIFF_SRC, pd.diff_src_desc());
        });
        INDArray diffDst = ctx.dense(g);
        INDArray dx = ctx.arena().allocate(DataType.FLOAT, layout.physicalShape(xs));
        p.bind(DNNL_ARG_DIFF_DST, diffDst);
        p.bind(DNNL_ARG_DIFF_SRC, dx);
        ctx.run(p);
        ctx.releaseIfCopy(diffDst, g);
        return dx;
    }
}
