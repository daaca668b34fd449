package org.convbn.net;

import org.convbn.nd4j.kernel.Arena;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.scalar.ScalarReverseSubtraction;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.AddOp;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.MulOp;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Sigmoid;
import org.nd4j.linalg.factory.Nd4j;

/**
 * SiLU (swish), {@code a = z sigmoid(z)}, elementwise in any layout. The backward is written in what the forward
 * made, {@code s = sigmoid(z)} and {@code a}: {@code silu'(z) = s + z s (1 - s) = s (1 - a) + a}, so the
 * pre-activation {@code z} is not kept (the output {@code a} is the next layer's input, kept there anyway) and no
 * exponential is evaluated twice. (libnd4j's SwishDerivative computes {@code e^z (z + e^z + 1) / (e^z + 1)^2}, NaN
 * in float32 for z above ~44.)
 */
public final class Silu {
    private Silu() {
    }

    /**
     * What the forward made.
     *
     * @param output {@code a = z sigmoid(z)}
     * @param sigmoid {@code s = sigmoid(z)}, kept for the backward
     */
    public record Result(INDArray output, INDArray sigmoid) {
    }

    /**
     * @param arena where both results come from
     * @param z the pre-activation, not modified
     * @return new arrays a and s, shaped like z
     */
    public static Result forward(Arena arena, INDArray z) {
        INDArray s = arena.allocate(z.dataType(), z.shape());
        Nd4j.exec(new Sigmoid(z, s));
        INDArray a = arena.allocate(z.dataType(), z.shape());
        Nd4j.exec(new MulOp(z, s, a));
        return new Result(a, s);
    }

    /**
     * {@code g *= s (1 - a) + a}.
     *
     * @param arena for one temporary
     * @param forward the forward's a and s, not modified
     * @param g dL/da, modified: becomes dL/dz
     */
    public static void backwardInPlace(Arena arena, Result forward, INDArray g) {
        INDArray t = arena.allocate(g.dataType(), g.shape());
        Nd4j.exec(new ScalarReverseSubtraction(forward.output(), null, t, 1.0));
        Nd4j.exec(new MulOp(t, forward.sigmoid(), t));
        Nd4j.exec(new AddOp(t, forward.output(), t));
        Nd4j.exec(new MulOp(g, t, g));
        arena.release(t);
    }
}
