package org.convbn.core;

import net.jcip.annotations.Immutable;

/**
 * The linear layer a BatchNorm follows in a block: the producer of the channels BN normalises. Every kind is
 * linear in its weight and bias, which is all the four modes need: {@code Y = A(X; W) + b}, and BN's fold scales
 * the weight entries that produce output channel {@code o} by {@code s[o]}. Which entries those are is the kind's
 * business ({@link #outputChannelOf}).
 *
 * <p>Kinds, with PyTorch's names ({@link #kind()} is the {@code layer} metadata of a compare case):
 * <ul>
 *   <li>{@link ConvConfig} ({@code conv2d}): weight {@code [O, C/groups, kH, kW]}, input {@code [N, C, H, W]};</li>
 *   <li>{@link ConvTransposeConfig} ({@code conv_transpose2d}): weight {@code [C, O/groups, kH, kW]},
 *       input {@code [N, C, H, W]};</li>
 *   <li>{@link LinearConfig} ({@code linear}): weight {@code [O, I]}, input {@code [N, I]} or {@code [N, I, L]}.</li>
 * </ul>
 * The output always has its channels on dimension 1, which is where BatchNorm1d and BatchNorm2d normalise.
 */
@Immutable
public sealed interface ProducerConfig permits ConvConfig, ConvTransposeConfig, LinearConfig {

    /** @return the PyTorch functional name: {@code conv2d}, {@code conv_transpose2d} or {@code linear} */
    String kind();

    /** @return the module name of the producer in a PyTorch state_dict of the pair: {@code conv} or {@code linear} */
    default String prefix() {
        return "conv";
    }

    /** @return the name of the weight tensor, e.g. {@code conv.weight} */
    default String weightName() {
        return prefix() + ".weight";
    }

    /** @return the name of the bias tensor, e.g. {@code conv.bias} */
    default String biasName() {
        return prefix() + ".bias";
    }

    /** @return input channels (features) C */
    int inChannels();

    /** @return output channels (features) O, the channels BN normalises */
    int outChannels();

    /** @return whether the producer adds a bias {@code [O]} */
    boolean bias();

    /** @return the weight shape in PyTorch's layout for this kind */
    long[] weightShape();

    /** @return number of weight elements */
    default long weightCount() {
        long n = 1;
        for (long d : weightShape()) {
            n *= d;
        }
        return n;
    }

    /**
     * @param flatIndex an index into the weight in row-major order of {@link #weightShape()}
     * @return the output channel that weight entry contributes to (the channel whose s scales it in the fold)
     */
    int outputChannelOf(long flatIndex);

    /** @return PyTorch's fan-in of the weight (its dimension 1 times the kernel area), for the default init */
    long fanIn();

    /**
     * @param inputShape the input shape, not modified
     * @return the output shape
     * @throws IllegalArgumentException if the input shape does not fit
     */
    long[] outputShape(long[] inputShape);

    /**
     * @param name the argument's name, for the message
     * @param shape the shape, not modified
     * @throws IllegalArgumentException naming {@code name}, the expected and the actual value
     */
    void checkInputShape(String name, long[] shape);

    /**
     * @param inputShape a valid input shape
     * @return multiply-adds of one forward of the producer on that input
     */
    long multiplyAdds(long[] inputShape);
}
