package org.convbn.core;

import java.util.Locale;
import net.jcip.annotations.Immutable;

/**
 * What a layer costs per sample: its trainable parameters and the multiply-adds of its forward pass.
 *
 * <p>A conv from C to O channels in g groups with a kH x kW kernel has {@code O * (C/g) * kH * kW} weights (plus O
 * biases) and does that many multiply-adds per output position: {@code O * oH * oW * (C/g) * kH * kW}. Grouping
 * divides both by g, which is the trade grouped convs make. A ConvBN block adds BN's gamma and beta (when affine) to
 * the parameters and nothing to the multiply-adds: folded (TUNE, DEPLOY) BN costs nothing per position, and EVAL's
 * separate affine is one multiply-add per output element, small beside the conv and not counted. Running statistics
 * are buffers, not parameters. FLOPs are twice the multiply-adds.
 *
 * @param parameters trainable parameters
 * @param multiplyAdds multiply-adds of one sample's forward pass
 */
@Immutable
public record Cost(long parameters, long multiplyAdds) {
    /** Nothing. */
    public static final Cost ZERO = new Cost(0, 0);

    public Cost {
        Checks.nonNegative("parameters", parameters);
        Checks.nonNegative("multiplyAdds", multiplyAdds);
    }

    /**
     * @param conv the convolution
     * @param inH input height
     * @param inW input width
     * @return the conv's weights (and bias) and its multiply-adds at that input size
     * @throws IllegalArgumentException if the input is too small for the kernel
     */
    public static Cost of(ConvConfig conv, int inH, int inW) {
        long[] out = conv.outputShape(new long[] {1, conv.inChannels(), inH, inW});
        long weights = conv.weightCount();
        long params = weights + (conv.bias() ? conv.outChannels() : 0);
        long perPosition = (long) conv.inChannelsPerGroup() * conv.kernelH() * conv.kernelW();
        return new Cost(params, out[1] * out[2] * out[3] * perPosition);
    }

    /** @return the block's conv cost plus BN's gamma and beta when affine (see the class comment) */
    public static Cost of(ConvBNConfig block, int inH, int inW) {
        Cost conv = of(block.conv(), inH, inW);
        return new Cost(conv.parameters() + (block.bn().affine() ? 2L * block.channels() : 0), conv.multiplyAdds());
    }

    /** @return a fully connected layer's cost: {@code in * out} weights plus {@code out} biases */
    public static Cost dense(int in, int out) {
        return new Cost((long) in * out + out, (long) in * out);
    }

    /** @return 2 x multiply-adds */
    public long flops() {
        return 2 * multiplyAdds;
    }

    /** @return the sum of both costs */
    public Cost plus(Cost other) {
        return new Cost(parameters + other.parameters, multiplyAdds + other.multiplyAdds);
    }

    @Override
    public String toString() {
        return String.format(
                Locale.ROOT,
                "%,d parameters, %,d multiply-adds (%.3f GFLOPs)",
                parameters,
                multiplyAdds,
                flops() / 1e9);
    }
}
