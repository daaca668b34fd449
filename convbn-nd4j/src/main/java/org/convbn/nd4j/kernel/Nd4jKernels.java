package org.convbn.nd4j.kernel;

import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.ConvConfig;
import org.convbn.nd4j.Conv2dOps;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastMulOp;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.MulOp;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * {@link Kernels} on libnd4j's ops, for every data type and ND4J backend: the conv on libnd4j's {@code conv2d} /
 * {@code conv2d_bp} ({@link Conv2dOps}, groups as a loop), BatchNorm as per-channel broadcast passes, pooling on
 * {@code maxpool2d}. Computes in NCHW; reads and writes the blocked layouts by converting.
 */
@NotThreadSafe
public final class Nd4jKernels implements Kernels {
    /** The provider of these kernels: every type, lowest priority. */
    public static final KernelsProvider PROVIDER = new KernelsProvider() {
        @Override
        public String name() {
            return "nd4j";
        }

        @Override
        public int priority() {
            return 0;
        }

        @Override
        public boolean supports(DataType type) {
            return type == DataType.FLOAT || type == DataType.DOUBLE;
        }

        @Override
        public Kernels create(DataType type, Arena arena) {
            return new Nd4jKernels(type, arena);
        }
    };

    private final DataType dataType;
    private final Arena arena;

    /**
     * @param dataType FLOAT or DOUBLE
     * @param arena where results come from
     */
    public Nd4jKernels(DataType dataType, Arena arena) {
        if (!PROVIDER.supports(dataType)) {
            throw new IllegalArgumentException("dataType: expected FLOAT or DOUBLE, got " + dataType);
        }
        this.dataType = dataType;
        this.arena = arena;
    }

    @Override
    public String name() {
        return PROVIDER.name();
    }

    @Override
    public DataType dataType() {
        return dataType;
    }

    @Override
    public Arena arena() {
        return arena;
    }

    @Override
    public Layout preferredLayout(int channels) {
        return Layout.NCHW;
    }

    @Override
    public INDArray relayout(INDArray t, Layout target) {
        Layout from = Layout.of(t);
        long[] logical = Layout.logicalShape(t);
        if (from != target && from.isBlocked() && target.isBlocked()) {
            // one block size to another through NCHW
            INDArray plain = relayout(t, Layout.NCHW);
            INDArray out = relayout(plain, target);
            arena.release(plain);
            return out;
        }
        INDArray out = arena.allocate(t.dataType(), target.physicalShape(logical));
        if (from == target) {
            return out.assign(t);
        }
        Layout blocked = from.isBlocked() ? from : target;
        long n = logical[0];
        long b = blocked.block();
        long blocks = logical[1] / b;
        long h = logical[2];
        long w = logical[3];
        if (target.isBlocked()) {
            // [N, C/b, b, H, W] viewed as [N, C/b, H, W, b]
            out.assign(t.reshape('c', n, blocks, b, h, w).permute(0, 1, 3, 4, 2));
        } else {
            out.reshape('c', n, blocks, b, h, w).assign(t.permute(0, 1, 4, 2, 3));
        }
        return out;
    }

    /** @return t itself when NCHW, else a new NCHW copy (release it when it is not t) */
    private INDArray nchw(INDArray t) {
        return Layout.of(t) == Layout.NCHW ? t : relayout(t, Layout.NCHW);
    }

    /** @return t (NCHW, owned) in layout {@code out}, releasing t when it is converted */
    private INDArray to(INDArray t, Layout out) {
        if (out == Layout.NCHW) {
            return t;
        }
        INDArray r = relayout(t, out);
        arena.release(t);
        return r;
    }

    private void releaseIfCopy(INDArray copy, INDArray original) {
        if (copy != original) {
            arena.release(copy);
        }
    }

    // ---------------------------------------------------------------- convolution

    /** @return w itself without a scale, else a new scaled copy (release it when it is not w) */
    private INDArray scaled(INDArray w, INDArray weightScale) {
        return weightScale == null ? w : scaleRows(w, weightScale);
    }

    @Override
    public INDArray conv(ConvConfig c, INDArray x, INDArray w, INDArray weightScale, INDArray b, Layout out) {
        INDArray xc = nchw(x);
        INDArray ws = scaled(w, weightScale);
        INDArray y = Conv2dOps.forward(arena, c, xc, ws, b);
        releaseIfCopy(ws, w);
        releaseIfCopy(xc, x);
        return to(y, out);
    }

    @Override
    public ConvGradients convBackward(
            ConvConfig c,
            INDArray x,
            INDArray w,
            INDArray weightScale,
            INDArray g,
            boolean inputGradient,
            boolean biasGradient,
            Layout inputLayout) {
        INDArray xc = nchw(x);
        INDArray gc = nchw(g);
        INDArray ws = scaled(w, weightScale);
        // conv2d_bp computes the bias gradient when given a bias; only its shape is read.
        INDArray bias = biasGradient ? arena.allocate(w.dataType(), w.size(0)) : null;
        ConvGradients r = Conv2dOps.backward(arena, c, xc, ws, bias, gc);
        arena.release(bias);
        releaseIfCopy(ws, w);
        releaseIfCopy(xc, x);
        releaseIfCopy(gc, g);
        INDArray dx = r.input();
        if (!inputGradient) {
            arena.release(dx);
            dx = null;
        } else {
            dx = to(dx, inputLayout);
        }
        return new ConvGradients(dx, r.weight(), r.bias());
    }

    // ---------------------------------------------------------------- BatchNorm

    /** @return {@code r = 1 / sqrt(var + eps)}, a new [C] array (not from the arena) */
    private static INDArray inverseStd(INDArray variance, double eps) {
        return Transforms.sqrt(variance.add(eps), false).rdivi(1.0);
    }

    /** @return a copy of a small temporary in the arena, closing the temporary */
    private INDArray own(INDArray temporary) {
        INDArray owned = arena.allocate(temporary.dataType(), temporary.shape()).assign(temporary);
        Arena.direct().release(temporary);
        return owned;
    }

    @Override
    public INDArray batchNorm(INDArray y, INDArray mean, INDArray variance, INDArray gamma, INDArray beta, double eps) {
        INDArray yc = nchw(y);
        INDArray s = inverseStd(variance, eps);
        if (gamma != null) {
            s.muli(gamma);
        }
        INDArray shift = mean.mul(s).negi();
        if (beta != null) {
            shift.addi(beta);
        }
        INDArray z = channelAffine(yc, s, shift);
        Arena.direct().release(s, shift);
        releaseIfCopy(yc, y);
        return to(z, Layout.of(y));
    }

    @Override
    public BatchNormGradients batchNormBackward(
            INDArray y, INDArray g, INDArray mean, INDArray variance, INDArray gamma, double eps) {
        INDArray yc = nchw(y);
        INDArray gc = nchw(g);
        INDArray r = inverseStd(variance, eps);
        INDArray s = gamma == null ? r : r.mul(gamma);
        INDArray dy = arena.allocate(gc.dataType(), gc.shape());
        Nd4j.exec(new BroadcastMulOp(gc, s, dy, 1));
        INDArray dgamma = null;
        INDArray dbeta = null;
        if (gamma != null) {
            // dgamma = r (sum(g Y) - mean sum(g)) = sum(g (Y - mean) r)
            INDArray sums = gc.sum(0, 2, 3);
            INDArray gy = arena.allocate(gc.dataType(), gc.shape());
            Nd4j.exec(new MulOp(gc, yc, gy));
            INDArray meanSums = mean.mul(sums);
            dgamma = own(gy.sum(0, 2, 3).subi(meanSums).muli(r));
            arena.release(gy);
            Arena.direct().release(meanSums, s);
            dbeta = own(sums);
        }
        Arena.direct().release(r);
        releaseIfCopy(yc, y);
        releaseIfCopy(gc, g);
        return new BatchNormGradients(to(dy, Layout.of(g)), dgamma, dbeta);
    }

    @Override
    public BatchStatistics batchNormTraining(INDArray y, INDArray gamma, INDArray beta, double eps) {
        INDArray yc = nchw(y);
        INDArray mean = own(yc.mean(0, 2, 3));
        INDArray var = own(yc.var(false, 0, 2, 3));
        releaseIfCopy(yc, y);
        return new BatchStatistics(batchNorm(y, mean, var, gamma, beta, eps), mean, var);
    }

    @Override
    public BatchNormGradients batchNormTrainingBackward(
            INDArray y, INDArray g, INDArray mean, INDArray variance, INDArray gamma, double eps) {
        INDArray yc = nchw(y);
        INDArray gc = nchw(g);
        long n = yc.length() / yc.size(1);
        INDArray rB = inverseStd(variance, eps);
        INDArray shift = mean.mul(rB).negi();
        INDArray xhat = channelAffine(yc, rB, shift);
        INDArray dbeta = gc.sum(0, 2, 3);
        INDArray gXhat = arena.allocate(gc.dataType(), gc.shape());
        Nd4j.exec(new MulOp(gc, xhat, gXhat));
        INDArray dgamma = gXhat.sum(0, 2, 3);
        arena.release(gXhat);
        INDArray a = gamma == null ? rB : rB.mul(gamma);
        // dY = a g - a dbeta / n - xhat a dgamma / n; xhat is overwritten with its term.
        INDArray betaTerm = a.mul(dbeta).divi(-n);
        INDArray gammaTerm = a.mul(dgamma).divi(-n);
        INDArray dy = channelAffine(gc, a, betaTerm);
        Nd4j.exec(new BroadcastMulOp(xhat, gammaTerm, xhat, 1));
        dy.addi(xhat);
        arena.release(xhat);
        Arena.direct().release(shift, betaTerm, gammaTerm, a == rB ? null : a, rB);
        releaseIfCopy(yc, y);
        releaseIfCopy(gc, g);
        INDArray dgammaOwned = gamma == null ? null : own(dgamma);
        INDArray dbetaOwned = gamma == null ? null : own(dbeta);
        if (gamma == null) {
            Arena.direct().release(dgamma, dbeta);
        }
        return new BatchNormGradients(to(dy, Layout.of(g)), dgammaOwned, dbetaOwned);
    }

    // ---------------------------------------------------------------- pooling

    /** {kH, kW, sH, sW, pH, pW, dH, dW, same=0, extra=0, NCHW=0}. */
    private static int[] poolArgs(int kernel, int stride, int pad) {
        return new int[] {kernel, kernel, stride, stride, pad, pad, 1, 1, 0, 0, 0};
    }

    @Override
    public Pooled maxPool(INDArray x, int kernel, int stride, int pad) {
        INDArray xc = nchw(x);
        long oh = (xc.size(2) + 2L * pad - kernel) / stride + 1;
        long ow = (xc.size(3) + 2L * pad - kernel) / stride + 1;
        INDArray out = arena.allocate(xc.dataType(), xc.size(0), xc.size(1), oh, ow);
        Nd4j.exec(DynamicCustomOp.builder("maxpool2d")
                .addInputs(xc)
                .addOutputs(out)
                .addIntegerArguments(poolArgs(kernel, stride, pad))
                .build());
        releaseIfCopy(xc, x);
        return new Pooled(to(out, Layout.of(x)), null, Layout.logicalShape(x), Layout.of(x));
    }

    @Override
    public INDArray maxPoolBackward(INDArray x, Pooled pooled, INDArray g, int kernel, int stride, int pad) {
        if (x == null) {
            throw new IllegalArgumentException(
                    "x: expected the pooled input (these kernels recompute the argmax from " + "it), got null");
        }
        INDArray xc = nchw(x);
        INDArray gc = nchw(g);
        INDArray dx = arena.allocate(xc.dataType(), xc.shape());
        Nd4j.exec(DynamicCustomOp.builder("maxpool2d_bp")
                .addInputs(xc, gc)
                .addOutputs(dx)
                .addIntegerArguments(poolArgs(kernel, stride, pad))
                .build());
        releaseIfCopy(xc, x);
        releaseIfCopy(gc, g);
        return to(dx, Layout.of(x));
    }

    @Override
    public INDArray globalAveragePool(INDArray x) {
        INDArray xc = nchw(x);
        INDArray out = own(xc.mean(2, 3));
        releaseIfCopy(xc, x);
        return out;
    }

    @Override
    public INDArray globalAveragePoolBackward(INDArray g, long[] logicalShape, Layout layout) {
        INDArray dx = arena.allocate(g.dataType(), logicalShape);
        dx.assign(1.0 / ((double) logicalShape[2] * logicalShape[3]));
        Nd4j.exec(new BroadcastMulOp(dx, g, dx, 0, 1));
        return to(dx, layout);
    }

    @Override
    public String toString() {
        return "Nd4jKernels[" + dataType + ", " + arena + "]";
    }
}
