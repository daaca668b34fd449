package org.convbn.onednn;

import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_DST;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_SCALE;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_SHIFT;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_SRC;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DST;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_MEAN;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SCALE;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SHIFT;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SRC;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_VARIANCE;
import static org.convbn.onednn.OnednnContext.dims;

import net.jcip.annotations.NotThreadSafe;
import org.bytedeco.dnnl.batch_normalization_backward;
import org.bytedeco.dnnl.batch_normalization_forward;
import org.bytedeco.dnnl.global.dnnl.normalization_flags;
import org.bytedeco.dnnl.global.dnnl.prop_kind;
import org.bytedeco.dnnl.memory;
import org.convbn.nd4j.kernel.Kernels.BatchNormGradients;
import org.convbn.nd4j.kernel.Kernels.BatchStatistics;
import org.convbn.nd4j.kernel.Layout;
import org.convbn.onednn.OnednnContext.Key;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** BatchNorm of {@link OnednnKernels}: with given or batch statistics, forward and backward, in any layout. */
@NotThreadSafe
final class OnednnBatchNorm {
    private final OnednnContext ctx;

    OnednnBatchNorm(OnednnContext ctx) {
        this.ctx = ctx;
    }

    private static int flags(boolean globalStats, boolean affine) {
        int f = globalStats ? normalization_flags.use_global_stats.value : 0;
        return affine ? f | normalization_flags.use_scale.value | normalization_flags.use_shift.value : f;
    }

    private batch_normalization_forward.primitive_desc bnForwardDesc(
            memory.desc data, double eps, int flags, prop_kind prop) {
        batch_normalization_forward.desc d = new batch_normalization_forward.desc(prop.value, data, (float) eps, flags);
        return new batch_normalization_forward.primitive_desc(d, Dnnl.userScratchpad(), Dnnl.ENGINE);
    }

    private Dnnl.Prepared bnForward(INDArray y, double eps, boolean affine, boolean training) {
        long[] ys = Layout.logicalShape(y);
        Layout layout = Layout.of(y);
        Key key = new Key("bn fwd", dims(ys), layout, eps, affine, training);
        return ctx.prepared(key, () -> {
            memory.desc data = Dnnl.featureMap(ys, layout);
            batch_normalization_forward.primitive_desc pd = bnForwardDesc(
                    data,
                    eps,
                    flags(!training, affine),
                    training ? prop_kind.forward_training : prop_kind.forward_inference);
            Dnnl.Prepared p = new Dnnl.Prepared(new batch_normalization_forward(pd), pd)
                    .arg(DNNL_ARG_SRC, data)
                    .arg(DNNL_ARG_DST, data)
                    .arg(DNNL_ARG_MEAN, Dnnl.vector(ys[1]))
                    .arg(DNNL_ARG_VARIANCE, Dnnl.vector(ys[1]));
            if (affine) {
                p.arg(DNNL_ARG_SCALE, Dnnl.vector(ys[1])).arg(DNNL_ARG_SHIFT, Dnnl.vector(ys[1]));
            }
            return p;
        });
    }

    private Dnnl.Prepared bnBackward(INDArray y, double eps, boolean affine, boolean training) {
        long[] ys = Layout.logicalShape(y);
        Layout layout = Layout.of(y);
        Key key = new Key("bn bwd", dims(ys), layout, eps, affine, training);
        return ctx.prepared(key, () -> {
            memory.desc data = Dnnl.featureMap(ys, layout);
            int flags = flags(!training, affine);
            batch_normalization_forward.primitive_desc hint = bnForwardDesc(
                    data, eps, flags, training ? prop_kind.forward_training : prop_kind.forward_inference);
            batch_normalization_backward.desc d = new batch_normalization_backward.desc(
                    (affine ? prop_kind.backward : prop_kind.backward_data).value, data, data, (float) eps, flags);
            batch_normalization_backward.primitive_desc pd =
                    new batch_normalization_backward.primitive_desc(d, Dnnl.userScratchpad(), Dnnl.ENGINE, hint);
            Dnnl.Prepared p = new Dnnl.Prepared(new batch_normalization_backward(pd), pd)
                    .arg(DNNL_ARG_SRC, data)
                    .arg(DNNL_ARG_DIFF_DST, data)
                    .arg(DNNL_ARG_DIFF_SRC, data)
                    .arg(DNNL_ARG_MEAN, Dnnl.vector(ys[1]))
                    .arg(DNNL_ARG_VARIANCE, Dnnl.vector(ys[1]));
            if (affine) {
                p.arg(DNNL_ARG_SCALE, Dnnl.vector(ys[1]))
                        .arg(DNNL_ARG_SHIFT, Dnnl.vector(ys[1]))
                        .arg(DNNL_ARG_DIFF_SCALE, Dnnl.vector(ys[1]))
                        .arg(DNNL_ARG_DIFF_SHIFT, Dnnl.vector(ys[1]));
            }
            return p;
        });
    }

    /** Binds small per-channel vectors (copied when not dense); returns the copies to give back. */
    private INDArray[] bindVectors(Dnnl.Prepared p, int[] args, INDArray... vectors) {
        INDArray[] copies = new INDArray[vectors.length];
        for (int i = 0; i < vectors.length; i++) {
            if (vectors[i] == null) {
                continue;
            }
            INDArray d = ctx.dense(vectors[i]);
            p.bind(args[i], d);
            copies[i] = d == vectors[i] ? null : d;
        }
        return copies;
    }

    INDArray batchNorm(INDArray y, INDArray mean, INDArray variance, INDArray gamma, INDArray beta, double eps) {
        INDArray src = ctx.dense(y);
        Dnnl.Prepared p = bnForward(src, eps, gamma != null, false);
        INDArray z = ctx.arena().allocate(DataType.FLOAT, src.shape());
        p.bind(DNNL_ARG_SRC, src);
        p.bind(DNNL_ARG_DST, z);
        INDArray[] copies = bindVectors(
                p,
                new int[] {DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_SCALE, DNNL_ARG_SHIFT},
                mean,
                variance,
                gamma,
                beta);
        ctx.run(p);
        ctx.arena().release(copies);
        ctx.releaseIfCopy(src, y);
        return z;
    }

    BatchNormGradients batchNormBackward(
            INDArray y, INDArray g, INDArray mean, INDArray variance, INDArray gamma, double eps) {
        return bnBackward(y, g, mean, variance, gamma, eps, false);
    }

    BatchStatistics batchNormTraining(INDArray y, INDArray gamma, INDArray beta, double eps) {
        INDArray src = ctx.dense(y);
        long c = Layout.logicalShape(y)[1];
        Dnnl.Prepared p = bnForward(src, eps, gamma != null, true);
        INDArray z = ctx.arena().allocate(DataType.FLOAT, src.shape());
        INDArray mean = ctx.arena().allocate(DataType.FLOAT, c);
        INDArray var = ctx.arena().allocate(DataType.FLOAT, c);
        p.bind(DNNL_ARG_SRC, src);
        p.bind(DNNL_ARG_DST, z);
        p.bind(DNNL_ARG_MEAN, mean);
        p.bind(DNNL_ARG_VARIANCE, var);
        INDArray[] copies = bindVectors(p, new int[] {DNNL_ARG_SCALE, DNNL_ARG_SHIFT}, gamma, beta);
        ctx.run(p);
        ctx.arena().release(copies);
        ctx.releaseIfCopy(src, y);
        return new BatchStatistics(z, mean, var);
    }

    BatchNormGradients batchNormTrainingBackward(
            INDArray y, INDArray g, INDArray mean, INDArray variance, INDArray gamma, double eps) {
        return bnBackward(y, g, mean, variance, gamma, eps, true);
    }

    private BatchNormGradients bnBackward(
            INDArray y, INDArray g, INDArray mean, INDArray variance, INDArray gamma, double eps, boolean training) {
        INDArray src = ctx.as(y, Layout.of(g));
        INDArray diffDst = ctx.dense(g);
        long c = Layout.logicalShape(y)[1];
        boolean affine = gamma != null;
        Dnnl.Prepared p = bnBackward(diffDst, eps, affine, training);
        INDArray dy = ctx.arena().allocate(DataType.FLOAT, diffDst.shape());
        INDArray dgamma = affine ? ctx.arena().allocate(DataType.FLOAT, c) : null;
        INDArray dbeta = affine ? ctx.arena().allocate(DataType.FLOAT, c) : null;
        p.bind(DNNL_ARG_SRC, src);
        p.bind(DNNL_ARG_DIFF_DST, diffDst);
        p.bind(DNNL_ARG_DIFF_SRC, dy);
        INDArray shift = affine ? ctx.arena().allocate(DataType.FLOAT, c) : null; // read by oneDNN, unused by the math
        INDArray[] copies = bindVectors(
                p,
                new int[] {
                    DNNL_ARG_MEAN,
                    DNNL_ARG_VARIANCE,
                    DNNL_ARG_SCALE,
                    DNNL_ARG_SHIFT,
                    DNNL_ARG_DIFF_SCALE,
                    DNNL_ARG_DIFF_SHIFT
                },
                mean,
                variance,
                gamma,
                shift,
                dgamma,
                dbeta);
        ctx.run(p);
        ctx.arena().release(copies);
        ctx.arena().release(shift);
        ctx.releaseIfCopy(src, y);
        ctx.releaseIfCopy(diffDst, g);
        return new BatchNormGradients(dy, dgamma, dbeta);
    }
}
