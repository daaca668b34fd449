package org.convbn.onednn;

import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_DST;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_SRC;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DST;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SRC;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SRC_0;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SRC_1;
import static org.convbn.onednn.OnednnContext.dims;
import static org.convbn.onednn.OnednnContext.isDense;

import net.jcip.annotations.NotThreadSafe;
import org.bytedeco.dnnl.binary;
import org.bytedeco.dnnl.eltwise_backward;
import org.bytedeco.dnnl.eltwise_forward;
import org.bytedeco.dnnl.global.dnnl.algorithm;
import org.bytedeco.dnnl.global.dnnl.prop_kind;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.primitive_attr;
import org.bytedeco.dnnl.reduction;
import org.convbn.nd4j.kernel.Layout;
import org.convbn.nd4j.kernel.Nd4jKernels;
import org.convbn.onednn.OnednnContext.Key;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The elementwise and binary work of {@link OnednnKernels}: ReLU, ReLU6, SiLU and hardswish with their backwards,
 * sums, per-channel and per-row scaling, row dot products. Arrays that are not dense, and the few cases oneDNN runs only in its reference
 * implementation, go to ND4J's kernels.
 */
@NotThreadSafe
final class OnednnElementwise {
    private final OnednnContext ctx;
    private final Nd4jKernels fallback;

    OnednnElementwise(OnednnContext ctx, Nd4jKernels fallback) {
        this.ctx = ctx;
        this.fallback = fallback;
    }

    /**
     * The elementwise functions the networks use, as oneDNN eltwise algorithms over flat runs of values: ReLU and
     * ReLU6 ({@code clip_v2} to [0, 6]; their backwards read the output), SiLU (oneDNN's swish
     * {@code z sigmoid(alpha z)} with alpha 1, vectorised where libnd4j's sigmoid is not) and hardswish (their
     * backwards read the input).
     */
    private enum Eltwise {
        RELU("relu", algorithm.eltwise_relu_use_dst_for_bwd, 0f, 0f, DNNL_ARG_DST),
        RELU6("relu6", algorithm.eltwise_clip_v2_use_dst_for_bwd, 0f, 6f, DNNL_ARG_DST),
        SILU("swish", algorithm.eltwise_swish, 1f, 0f, DNNL_ARG_SRC),
        HARDSWISH("hardswish", algorithm.eltwise_hardswish, 0f, 0f, DNNL_ARG_SRC);

        final String name;
        final algorithm kind;
        final float alpha;
        final float beta;
        /** The forward tensor the backward reads: the output for ReLU and ReLU6, the input for the others. */
        final int backwardReads;

        Eltwise(String name, algorithm kind, float alpha, float beta, int backwardReads) {
            this.name = name;
            this.kind = kind;
            this.alpha = alpha;
            this.beta = beta;
            this.backwardReads = backwardReads;
        }

        eltwise_forward.desc forward(memory.desc d) {
            return new eltwise_forward.desc(prop_kind.forward_training, kind, d, alpha, beta);
        }
    }

    /** Runs {@code f} forward on {@code src} into {@code dst} (both dense, same length; may be the same array). */
    private void eltwiseForward(Eltwise f, INDArray src, INDArray dst) {
        long length = src.length();
        Dnnl.Prepared p = ctx.prepared(new Key(f.name + " fwd", length), () -> {
            memory.desc d = Dnnl.flat(length);
            eltwise_forward.primitive_desc pd =
                    new eltwise_forward.primitive_desc(f.forward(d), Dnnl.userScratchpad(), Dnnl.ENGINE);
            return new Dnnl.Prepared(new eltwise_forward(pd), pd)
                    .arg(DNNL_ARG_SRC, d)
                    .arg(DNNL_ARG_DST, d);
        });
        p.bind(DNNL_ARG_SRC, src);
        p.bind(DNNL_ARG_DST, dst);
        ctx.run(p);
    }

    /**
     * Runs {@code f} backward: dx = f'(data) g, where data is the tensor {@link Eltwise#backwardReads} names (all
     * dense, same length; dx may be g).
     */
    private void eltwiseBackward(Eltwise f, INDArray data, INDArray g, INDArray dx) {
        long length = g.length();
        Dnnl.Prepared p = ctx.prepared(new Key(f.name + " bwd", length), () -> {
            memory.desc d = Dnnl.flat(length);
            eltwise_forward.primitive_desc hint = new eltwise_forward.primitive_desc(f.forward(d), Dnnl.ENGINE);
            eltwise_backward.primitive_desc pd = new eltwise_backward.primitive_desc(
                    new eltwise_backward.desc(f.kind, d, d, f.alpha, f.beta), Dnnl.userScratchpad(), Dnnl.ENGINE, hint);
            return new Dnnl.Prepared(new eltwise_backward(pd), pd)
                    .arg(f.backwardReads, d)
                    .arg(DNNL_ARG_DIFF_DST, d)
                    .arg(DNNL_ARG_DIFF_SRC, d);
        });
        p.bind(f.backwardReads, data);
        p.bind(DNNL_ARG_DIFF_DST, g);
        p.bind(DNNL_ARG_DIFF_SRC, dx);
        ctx.run(p);
    }

    void reluInPlace(INDArray t) {
        if (!isDense(t)) {
            fallback.reluInPlace(t);
            return;
        }
        eltwiseForward(Eltwise.RELU, t, t);
    }

    INDArray reluBackward(INDArray out, INDArray g) {
        if (!isDense(out) || !isDense(g)) {
            return fallback.reluBackward(out, g);
        }
        INDArray dx = ctx.arena().allocate(DataType.FLOAT, g.shape());
        eltwiseBackward(Eltwise.RELU, out, g, dx);
        return dx;
    }

    void reluBackwardInPlace(INDArray out, INDArray g) {
        if (!isDense(out) || !isDense(g)) {
            fallback.reluBackwardInPlace(out, g);
            return;
        }
        eltwiseBackward(Eltwise.RELU, out, g, g);
    }

    INDArray silu(INDArray z) {
        if (!isDense(z)) {
            return fallback.silu(z);
        }
        INDArray a = ctx.arena().allocate(DataType.FLOAT, z.shape());
        eltwiseForward(Eltwise.SILU, z, a);
        return a;
    }

    void siluBackwardInPlace(INDArray z, INDArray g) {
        if (!isDense(z) || !isDense(g)) {
            fallback.siluBackwardInPlace(z, g);
            return;
        }
        eltwiseBackward(Eltwise.SILU, z, g, g);
    }

    void relu6InPlace(INDArray t) {
        if (!isDense(t)) {
            fallback.relu6InPlace(t);
            return;
        }
        eltwiseForward(Eltwise.RELU6, t, t);
    }

    void relu6BackwardInPlace(INDArray out, INDArray g) {
        if (!isDense(out) || !isDense(g)) {
            fallback.relu6BackwardInPlace(out, g);
            return;
        }
        eltwiseBackward(Eltwise.RELU6, out, g, g);
    }

    INDArray hardswish(INDArray z) {
        if (!isDense(z)) {
            return fallback.hardswish(z);
        }
        INDArray a = ctx.arena().allocate(DataType.FLOAT, z.shape());
        eltwiseForward(Eltwise.HARDSWISH, z, a);
        return a;
    }

    void hardswishBackwardInPlace(INDArray z, INDArray g) {
        if (!isDense(z) || !isDense(g)) {
            fallback.hardswishBackwardInPlace(z, g);
            return;
        }
        eltwiseBackward(Eltwise.HARDSWISH, z, g, g);
    }

    /**
     * The per-(sample, channel) gate as one binary multiply of x by an {@code [N, C, 1, 1]} gate. oneDNN 2.5's jit
     * binary kernels broadcast so only where the channel block is the ISA's vector width (8 on AVX2, 16 on AVX-512);
     * elsewhere it has only its reference implementation (measured on AVX2, 8x32x112x112 in 16-channel blocks:
     * 170-280 ms, also split per sample), and ND4J's broadcast multiply runs instead (27-37 ms there, as fast as the
     * jit binary on 8-channel blocks).
     */
    INDArray scaleChannels(INDArray x, INDArray s) {
        if (!isDense(x)) {
            return fallback.scaleChannels(x, s);
        }
        long[] xs = Layout.logicalShape(x);
        Layout layout = Layout.of(x);
        Dnnl.Prepared p = ctx.prepared(
                new Key("scale channels", dims(xs), layout),
                () -> binary(
                        algorithm.binary_mul,
                        Dnnl.featureMap(xs, layout),
                        Dnnl.featureMap(new long[] {xs[0], xs[1], 1, 1}, layout)));
        if (p.isReference()) {
            return fallback.scaleChannels(x, s);
        }
        INDArray gate = ctx.dense(s);
        INDArray out = ctx.arena().allocate(DataType.FLOAT, x.shape());
        p.bind(DNNL_ARG_SRC_0, x);
        p.bind(DNNL_ARG_SRC_1, gate);
        p.bind(DNNL_ARG_DST, out);
        ctx.run(p);
        ctx.releaseIfCopy(gate, s);
        return out;
    }

    /** A binary primitive {@code dst = src0 op src1} with dst shaped as src0, src1 broadcast over its unit dims. */
    private static Dnnl.Prepared binary(algorithm op, memory.desc src0, memory.desc src1) {
        binary.primitive_desc pd =
                new binary.primitive_desc(new binary.desc(op, src0, src1, src0), Dnnl.userScratchpad(), Dnnl.ENGINE);
        return new Dnnl.Prepared(new binary(pd), pd)
                .arg(DNNL_ARG_SRC_0, src0)
                .arg(DNNL_ARG_SRC_1, src1)
                .arg(DNNL_ARG_DST, src0);
    }

    void addInPlace(INDArray target, INDArray source, double alpha) {
        if (!isDense(target) || !isDense(source)) {
            fallback.addInPlace(target, source, alpha);
            return;
        }
        long length = target.length();
        Dnnl.Prepared p = ctx.prepared(new Key("add", length, alpha), () -> {
            memory.desc d = Dnnl.flat(length);
            primitive_attr attr = Dnnl.userScratchpad();
            if (alpha != 1.0) {
                attr.set_scales(DNNL_ARG_SRC_1, 0, new float[] {(float) alpha});
            }
            binary.primitive_desc pd =
                    new binary.primitive_desc(new binary.desc(algorithm.binary_add, d, d, d), attr, Dnnl.ENGINE);
            return new Dnnl.Prepared(new binary(pd), pd)
                    .arg(DNNL_ARG_SRC_0, d)
                    .arg(DNNL_ARG_SRC_1, d)
                    .arg(DNNL_ARG_DST, d);
        });
        p.bind(DNNL_ARG_SRC_0, target);
        p.bind(DNNL_ARG_SRC_1, source);
        p.bind(DNNL_ARG_DST, target);
        ctx.run(p);
    }

    void scaleRowsInPlace(INDArray w, INDArray scale) {
        if (!isDense(w)) {
            fallback.scaleRowsInPlace(w, scale);
            return;
        }
        Dnnl.Prepared p = rowScaler(w.size(0), w.length() / w.size(0));
        scaleRows(p, w, scale, w);
    }

    private Dnnl.Prepared rowScaler(long rows, long cols) {
        return ctx.prepared(new Key("scale rows", rows, cols), () -> {
            memory.desc m = Dnnl.desc(new long[] {rows, cols}, memory.format_tag.ab);
            return binary(algorithm.binary_mul, m, Dnnl.desc(new long[] {rows, 1}, memory.format_tag.ab));
        });
    }

    private void scaleRows(Dnnl.Prepared p, INDArray w, INDArray scale, INDArray out) {
        INDArray s = ctx.dense(scale);
        p.bind(DNNL_ARG_SRC_0, w);
        p.bind(DNNL_ARG_SRC_1, s);
        p.bind(DNNL_ARG_DST, out);
        ctx.run(p);
        ctx.releaseIfCopy(s, scale);
    }

    /**
     * The row dot products as a product into a temporary and a sum along each row: two passes at the memory's
     * speed (a batched matrix product of 1xK by Kx1 took 3-4x longer, libnd4j's reduce3 along the row longer still).
     */
    INDArray rowDots(INDArray a, INDArray b) {
        long rows = a.size(0);
        long cols = a.length() / rows;
        // a one-column reduction has the same source and destination shape, which oneDNN's reduction refuses
        if (cols < 2 || !isDense(a) || !isDense(b)) {
            return fallback.rowDots(a, b);
        }
        memory.desc m = Dnnl.desc(new long[] {rows, cols}, memory.format_tag.ab);
        Dnnl.Prepared product =
                ctx.prepared(new Key("row product", rows, cols), () -> binary(algorithm.binary_mul, m, m));
        Dnnl.Prepared sum = ctx.prepared(new Key("row sum", rows, cols), () -> {
            memory.desc v = Dnnl.desc(new long[] {rows, 1}, memory.format_tag.ab);
            reduction.primitive_desc pd = new reduction.primitive_desc(
                    new reduction.desc(algorithm.reduction_sum, m, v, 0f, 0f), Dnnl.userScratchpad(), Dnnl.ENGINE);
            return new Dnnl.Prepared(new reduction(pd), pd).arg(DNNL_ARG_SRC, m).arg(DNNL_ARG_DST, v);
        });
        INDArray out = ctx.arena().allocate(DataType.FLOAT, rows);
        INDArray products = ctx.arena().allocate(DataType.FLOAT, rows, cols);
        product.bind(DNNL_ARG_SRC_0, a);
        product.bind(DNNL_ARG_SRC_1, b);
        product.bind(DNNL_ARG_DST, products);
        ctx.run(product);
        sum.bind(DNNL_ARG_SRC, products);
        sum.bind(DNNL_ARG_DST, out);
        ctx.run(sum);
        ctx.arena().release(products);
        return out;
    }

    INDArray scaleRows(INDArray w, INDArray scale) {
        INDArray src = ctx.dense(w);
        INDArray out = ctx.arena().allocate(DataType.FLOAT, w.shape());
        scaleRows(rowScaler(w.size(0), w.length() / w.size(0)), src, scale, out);
        ctx.releaseIfCopy(src, w);
        return out;
    }
}
