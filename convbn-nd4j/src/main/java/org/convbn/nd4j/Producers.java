package org.convbn.nd4j;

import org.convbn.core.ConvConfig;
import org.convbn.core.ConvTransposeConfig;
import org.convbn.core.LinearConfig;
import org.convbn.core.ProducerConfig;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.Layout;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastDivOp;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastMulOp;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.MulOp;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The producer-specific steps of the mode functions, one switch per step over the kinds of {@link ProducerConfig}:
 * the layer's forward and backward, and the weight-sized steps of the fold that depend on which weight entries
 * produce output channel o.
 *
 * <p>Feature maps reach these functions with rank 4 (the block gives a linear layer's {@code [N, I]} or
 * {@code [N, I, L]} as {@code [N, I, 1, 1]} or {@code [N, I, L, 1]}), so BatchNorm runs on the kernels' NCHW passes
 * for every kind. A linear layer is a 1x1 conv over that view (its weight {@code [O, I]} viewed as
 * {@code [O, I, 1, 1]}) and runs on the kernels' convolution; a transposed conv runs on {@link ConvTranspose2dOps}
 * (libnd4j's ops, NCHW). Weights of conv2d and linear have the output channel on dimension 0 ("rows"); a transposed
 * conv's weight {@code [C, O/groups, kH, kW]} is viewed as {@code [groups, C/groups, O/groups, kH kW]}, where output
 * channel {@code g * O/groups + j} is the entry {@code [g, :, j, :]}: the fold scales dimensions 0 and 2 of that
 * view together.
 *
 * <p>Contract as {@link Kernels}: arguments are not modified unless the name ends in {@code InPlace}; results come
 * from the kernels' arena.
 */
final class Producers {
    private Producers() {}

    /** {@code A(x; diag(weightScale) w) + b}, as {@link Kernels#conv} for every kind. */
    static INDArray forward(
            Kernels k, ProducerConfig p, INDArray x, INDArray w, INDArray weightScale, INDArray b, Layout out) {
        if (p instanceof ConvConfig c) {
            return k.conv(c, x, w, weightScale, b, out);
        }
        if (p instanceof LinearConfig l) {
            return k.conv(l.asConv(), x, asConvWeight(w), weightScale, b, out);
        }
        ConvTransposeConfig t = (ConvTransposeConfig) p;
        INDArray ws = weightScale == null ? w : scaleOutputs(k, t, w, weightScale);
        INDArray xc = nchw(k, x);
        INDArray y = ConvTranspose2dOps.forward(k.arena(), t, xc, ws, b);
        releaseIfCopy(k, ws, w);
        releaseIfCopy(k, xc, x);
        return relayout(k, y, out);
    }

    /** The gradients of {@link #forward}, as {@link Kernels#convBackward}: dW is with respect to the scaled weight. */
    static Kernels.ConvGradients backward(
            Kernels k,
            ProducerConfig p,
            INDArray x,
            INDArray w,
            INDArray weightScale,
            INDArray g,
            boolean inputGradient,
            boolean biasGradient,
            Layout inputLayout) {
        if (p instanceof ConvConfig c) {
            return k.convBackward(c, x, w, weightScale, g, inputGradient, biasGradient, inputLayout);
        }
        if (p instanceof LinearConfig l) {
            Kernels.ConvGradients r = k.convBackward(
                    l.asConv(), x, asConvWeight(w), weightScale, g, inputGradient, biasGradient, inputLayout);
            return new Kernels.ConvGradients(r.input(), r.weight().reshape(w.shape()), r.bias());
        }
        ConvTransposeConfig t = (ConvTransposeConfig) p;
        INDArray ws = weightScale == null ? w : scaleOutputs(k, t, w, weightScale);
        INDArray xc = nchw(k, x);
        INDArray gc = nchw(k, g);
        Kernels.ConvGradients r = ConvTranspose2dOps.backward(k.arena(), t, xc, ws, gc, inputGradient, biasGradient);
        releaseIfCopy(k, ws, w);
        releaseIfCopy(k, xc, x);
        releaseIfCopy(k, gc, g);
        return new Kernels.ConvGradients(
                r.input() == null ? null : relayout(k, r.input(), inputLayout), r.weight(), r.bias());
    }

    /** @return a new array: w with the entries of output channel o multiplied by {@code scale[o]} */
    static INDArray scaleOutputs(Kernels k, ProducerConfig p, INDArray w, INDArray scale) {
        return p instanceof ConvTransposeConfig ? scaleOutputs(k.arena(), p, w, scale) : k.scaleRows(w, scale);
    }

    /** As {@link #scaleOutputs(Kernels, ProducerConfig, INDArray, INDArray)} on plain ND4J ops, from {@code arena}. */
    static INDArray scaleOutputs(Arena arena, ProducerConfig p, INDArray w, INDArray scale) {
        INDArray out = arena.allocate(w.dataType(), w.shape());
        perOutput(p, w, scale, out, false);
        return out;
    }

    /** @param w modified: the entries of output channel o multiplied by {@code scale[o]} */
    static void scaleOutputsInPlace(Kernels k, ProducerConfig p, INDArray w, INDArray scale) {
        if (p instanceof ConvTransposeConfig) {
            perOutput(p, w, scale, w, false);
        } else {
            k.scaleRowsInPlace(w, scale);
        }
    }

    /**
     * @return a new array (not from an arena): w with the entries of output channel o divided by {@code scale[o]}
     */
    static INDArray divideOutputs(ProducerConfig p, INDArray w, INDArray scale) {
        INDArray out = Nd4j.createUninitialized(w.dataType(), w.shape());
        perOutput(p, w, scale, out, true);
        return out;
    }

    /** {@code out = w * scale} or {@code w / scale} per output channel ({@code out} may be {@code w}). */
    private static void perOutput(ProducerConfig p, INDArray w, INDArray scale, INDArray out, boolean divide) {
        if (p instanceof ConvTransposeConfig t) {
            INDArray x = grouped(t, w);
            INDArray y = byGroup(t, scale);
            INDArray z = out == w ? x : grouped(t, out);
            Nd4j.exec(divide ? new BroadcastDivOp(x, y, z, 0, 2) : new BroadcastMulOp(x, y, z, 0, 2));
        } else {
            Nd4j.exec(divide ? new BroadcastDivOp(w, scale, out, 0) : new BroadcastMulOp(w, scale, out, 0));
        }
    }

    /** @return a new {@code [O]} array: per output channel o, the sum of a * b over the entries of o */
    static INDArray outputDots(Kernels k, ProducerConfig p, INDArray a, INDArray b) {
        if (!(p instanceof ConvTransposeConfig t)) {
            return k.rowDots(a, b);
        }
        INDArray product = k.arena().allocate(a.dataType(), a.shape());
        Nd4j.exec(new MulOp(a, b, product));
        INDArray sums = grouped(t, product).sum(1, 3);
        INDArray out = k.arena().allocate(a.dataType(), t.outChannels()).assign(sums.reshape(t.outChannels()));
        k.arena().release(product);
        Arena.direct().release(sums);
        return out;
    }

    /** @return a linear weight {@code [O, I]} as a 1x1 conv weight {@code [O, I, 1, 1]} (a view) */
    private static INDArray asConvWeight(INDArray w) {
        return w.rank() == 4 ? w : w.reshape(w.size(0), w.size(1), 1, 1);
    }

    /** @return a transposed conv's weight viewed as {@code [groups, C/groups, O/groups, kH kW]} */
    private static INDArray grouped(ConvTransposeConfig t, INDArray w) {
        return w.reshape(
                'c', t.groups(), t.inChannelsPerGroup(), t.outChannelsPerGroup(), (long) t.kernelH() * t.kernelW());
    }

    /** @return {@code [O]} viewed as {@code [groups, O/groups]} */
    private static INDArray byGroup(ConvTransposeConfig t, INDArray perChannel) {
        return perChannel.reshape('c', t.groups(), t.outChannelsPerGroup());
    }

    private static INDArray nchw(Kernels k, INDArray t) {
        return Layout.of(t) == Layout.NCHW ? t : k.relayout(t, Layout.NCHW);
    }

    private static INDArray relayout(Kernels k, INDArray t, Layout target) {
        if (target == Layout.NCHW) {
            return t;
        }
        INDArray r = k.relayout(t, target);
        k.arena().release(t);
        return r;
    }

    private static void releaseIfCopy(Kernels k, INDArray maybeCopy, INDArray original) {
        if (maybeCopy != original) {
            k.arena().release(maybeCopy);
        }
    }
}
