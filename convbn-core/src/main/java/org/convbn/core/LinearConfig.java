package org.convbn.core;

import java.util.Arrays;
import net.jcip.annotations.Immutable;

/**
 * A fully connected layer followed by BatchNorm1d: {@code Y[n, o, l] = sum_i W[o, i] X[n, i, l] + b[o]}.
 *
 * <p>Shapes: weight {@code [O, I]} (PyTorch's {@code nn.Linear}), bias {@code [O]}; input {@code [N, I]} or
 * {@code [N, I, L]} with the features on dimension 1, as BatchNorm1d expects them (PyTorch's Linear itself works
 * on the last dimension: a {@code [N, L, I]} sequence is transposed to {@code [N, I, L]} around it, and so is it
 * here); output {@code [N, O]} or {@code [N, O, L]}. BN normalises each output feature over N (and L).
 *
 * @param inFeatures I
 * @param outFeatures O
 * @param bias whether the layer adds a bias
 * @throws IllegalArgumentException naming {@code inFeatures} or {@code outFeatures} when it is below 1
 */
@Immutable
public record LinearConfig(int inFeatures, int outFeatures, boolean bias) implements ProducerConfig {

    public LinearConfig {
        Checks.positive("inFeatures", inFeatures);
        Checks.positive("outFeatures", outFeatures);
    }

    @Override
    public String kind() {
        return "linear";
    }

    @Override
    public String prefix() {
        return "linear";
    }

    @Override
    public int inChannels() {
        return inFeatures;
    }

    @Override
    public int outChannels() {
        return outFeatures;
    }

    @Override
    public long[] weightShape() {
        return new long[] {outFeatures, inFeatures};
    }

    @Override
    public int outputChannelOf(long flatIndex) {
        return (int) (flatIndex / inFeatures);
    }

    @Override
    public long fanIn() {
        return inFeatures;
    }

    /** @return the 1x1 convolution that computes this layer on {@code [N, I, L, 1]} */
    public ConvConfig asConv() {
        return ConvConfig.builder(inFeatures, outFeatures).kernel(1).bias(bias).build();
    }

    @Override
    public long[] outputShape(long[] inputShape) {
        checkInputShape("input", inputShape);
        long[] out = inputShape.clone();
        out[1] = outFeatures;
        return out;
    }

    @Override
    public void checkInputShape(String name, long[] shape) {
        if (shape.length != 2 && shape.length != 3) {
            throw new IllegalArgumentException(name + ": expected [N, I=" + inFeatures + "] or [N, I=" + inFeatures
                    + ", L], got rank " + shape.length + " " + Arrays.toString(shape));
        }
        if (shape[1] != inFeatures) {
            throw new IllegalArgumentException(name + ": expected " + inFeatures + " features (dimension 1), got "
                    + shape[1] + " in " + Arrays.toString(shape));
        }
        for (long d : shape) {
            if (d < 1) {
                throw new IllegalArgumentException(
                        name + ": expected every dimension >= 1, got " + Arrays.toString(shape));
            }
        }
    }

    @Override
    public long multiplyAdds(long[] inputShape) {
        long positions = inputShape[0] * (inputShape.length == 3 ? inputShape[2] : 1);
        return positions * inFeatures * outFeatures;
    }

    @Override
    public String toString() {
        return "linear " + inFeatures + "->" + outFeatures + (bias ? " bias" : " nobias");
    }
}
