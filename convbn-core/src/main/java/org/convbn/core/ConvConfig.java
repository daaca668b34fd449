package org.convbn.core;

import java.util.Arrays;
import net.jcip.annotations.Immutable;
import net.jcip.annotations.NotThreadSafe;

/**
 * Immutable configuration of a 2-D convolution in NCHW layout.
 *
 * <p>Shapes: input {@code [N, inChannels, H, W]}, weight {@code [outChannels, inChannels / groups, kernelH,
 * kernelW]} (PyTorch's OIHW), bias {@code [outChannels]} when {@code bias} is true, output {@code [N,
 * outChannels, outH, outW]} with, for explicit padding {@code p},
 * <pre>
 *   outH = floor((H + 2 * pH - dilationH * (kernelH - 1) - 1) / strideH) + 1
 * </pre>
 * and for "same" padding {@code outH = ceil(H / strideH)} (see {@link Padding}). Output channel {@code o}
 * belongs to group {@code o / (outChannels / groups)} and sees that group's slice of input channels;
 * {@code groups == inChannels} is a depthwise convolution.
 *
 * @param inChannels C, input channels
 * @param outChannels O, output channels
 * @param kernelH kernel height
 * @param kernelW kernel width
 * @param strideH vertical stride
 * @param strideW horizontal stride
 * @param padding zero padding
 * @param dilationH vertical dilation
 * @param dilationW horizontal dilation
 * @param groups number of groups, dividing both C and O
 * @param bias whether the conv adds a bias
 */
@Immutable
public record ConvConfig(
        int inChannels,
        int outChannels,
        int kernelH,
        int kernelW,
        int strideH,
        int strideW,
        Padding padding,
        int dilationH,
        int dilationW,
        int groups,
        boolean bias)
        implements ProducerConfig {

    public ConvConfig {
        ConvGeometry.check(inChannels, outChannels, kernelH, kernelW, strideH, strideW, dilationH, dilationW, groups);
        if (padding == null) {
            throw new NullPointerException("padding: expected explicit or same, got null");
        }
    }

    /** @return a builder of a conv from {@code inChannels} to {@code outChannels}, 3x3, stride 1, no padding */
    public static Builder builder(int inChannels, int outChannels) {
        return new Builder(inChannels, outChannels);
    }

    @Override
    public String kind() {
        return "conv2d";
    }

    @Override
    public int outputChannelOf(long flatIndex) {
        return (int) (flatIndex / ((long) inChannelsPerGroup() * kernelH * kernelW));
    }

    @Override
    public long fanIn() {
        return (long) inChannelsPerGroup() * kernelH * kernelW;
    }

    @Override
    public long multiplyAdds(long[] inputShape) {
        long[] out = outputShape(inputShape);
        return out[0] * out[2] * out[3] * weightCount();
    }

    /** @return input channels per group */
    public int inChannelsPerGroup() {
        return inChannels / groups;
    }

    /** @return output channels per group */
    public int outChannelsPerGroup() {
        return outChannels / groups;
    }

    /** @return true when every input channel is its own group */
    public boolean isDepthwise() {
        return groups > 1 && groups == inChannels;
    }

    /** @return the weight shape {@code [O, C/groups, kH, kW]} */
    public long[] weightShape() {
        return new long[] {outChannels, inChannelsPerGroup(), kernelH, kernelW};
    }

    /** @return number of weight elements */
    @Override
    public long weightCount() {
        return (long) outChannels * inChannelsPerGroup() * kernelH * kernelW;
    }

    /** @return output height for an input of height {@code inH}; &lt; 1 when the input is too small */
    public int outputHeight(int inH) {
        return Padding.outputLength(padding.isSame(), inH, kernelH, strideH, dilationH, padding.h());
    }

    /** @return output width for an input of width {@code inW}; &lt; 1 when the input is too small */
    public int outputWidth(int inW) {
        return Padding.outputLength(padding.isSame(), inW, kernelW, strideW, dilationW, padding.w());
    }

    /** @return zero rows added above an input of height {@code inH} */
    public int padTop(int inH) {
        return Padding.before(padding.isSame(), inH, kernelH, strideH, dilationH, padding.h());
    }

    /** @return zero columns added left of an input of width {@code inW} */
    public int padLeft(int inW) {
        return Padding.before(padding.isSame(), inW, kernelW, strideW, dilationW, padding.w());
    }

    /**
     * @param inputShape {@code [N, C, H, W]}, not modified
     * @return the output shape {@code [N, O, outH, outW]}
     * @throws IllegalArgumentException if the input shape does not fit this conv
     */
    public long[] outputShape(long[] inputShape) {
        checkInputShape("input", inputShape);
        return new long[] {
            inputShape[0], outChannels, outputHeight((int) inputShape[2]), outputWidth((int) inputShape[3])
        };
    }

    /**
     * Checks an input shape against this conv: rank 4, C channels, a non-empty batch, an output of at least 1x1.
     *
     * @param name the argument's name, for the message
     * @param shape the shape, not modified
     * @throws IllegalArgumentException naming {@code name}, the expected and the actual value
     */
    public void checkInputShape(String name, long[] shape) {
        if (shape.length != 4) {
            throw new IllegalArgumentException(name + ": expected rank 4 [N, C=" + inChannels + ", H, W], got rank "
                    + shape.length + " " + Arrays.toString(shape));
        }
        if (shape[1] != inChannels) {
            throw new IllegalArgumentException(name + ": expected " + inChannels + " channels (dimension 1), got "
                    + shape[1] + " in " + Arrays.toString(shape));
        }
        if (shape[0] < 1 || shape[2] < 1 || shape[3] < 1) {
            throw new IllegalArgumentException(name + ": expected N, H, W >= 1, got " + Arrays.toString(shape));
        }
        if (shape[2] > Integer.MAX_VALUE || shape[3] > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(name + ": spatial size too large: " + Arrays.toString(shape));
        }
        int oh = outputHeight((int) shape[2]);
        int ow = outputWidth((int) shape[3]);
        if (oh < 1 || ow < 1) {
            throw new IllegalArgumentException(name + ": spatial size " + shape[2] + "x" + shape[3]
                    + " is smaller than the dilated kernel " + ((kernelH - 1) * dilationH + 1) + "x"
                    + ((kernelW - 1) * dilationW + 1) + " with padding " + padding + "; expected an output of at "
                    + "least 1x1, got " + oh + "x" + ow);
        }
    }

    /** Builder of {@link ConvConfig}; {@link #build()} validates. Defaults: 3x3, stride 1, padding 0, dilation 1, groups 1, bias on. */
    @NotThreadSafe
    public static final class Builder extends ConvGeometry.Builder<Builder> {
        private Padding padding = Padding.of(0);

        private Builder(int inChannels, int outChannels) {
            super(inChannels, outChannels);
        }

        @Override
        Builder self() {
            return this;
        }

        /** @param p explicit zero padding on every side */
        public Builder padding(int p) {
            return padding(Padding.of(p));
        }

        /** @param p explicit or "same" padding */
        public Builder padding(Padding p) {
            this.padding = p;
            return this;
        }

        /** Sets groups to the input channel count: one filter bank per input channel. */
        public Builder depthwise() {
            return groups(inChannels);
        }

        /**
         * Sets groups from the number of input channels per group: {@code groups = inChannels / size}. Size 1 is
         * depthwise, size {@code inChannels} a full conv; EfficientNet-style grouped convs use 16.
         *
         * @throws IllegalArgumentException if {@code size} is not a positive divisor of inChannels
         */
        public Builder groupSize(int size) {
            if (size < 1 || inChannels % size != 0) {
                throw new IllegalArgumentException(
                        "groupSize: expected a positive divisor of inChannels=" + inChannels + ", got " + size);
            }
            return groups(inChannels / size);
        }

        /** @throws IllegalArgumentException naming the first invalid setting */
        public ConvConfig build() {
            return new ConvConfig(
                    inChannels,
                    outChannels,
                    kernelH,
                    kernelW,
                    strideH,
                    strideW,
                    padding,
                    dilationH,
                    dilationW,
                    groups,
                    bias);
        }
    }
}
