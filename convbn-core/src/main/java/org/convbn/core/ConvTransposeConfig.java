package org.convbn.core;

import java.util.Arrays;
import net.jcip.annotations.Immutable;
import net.jcip.annotations.NotThreadSafe;

/**
 * Immutable configuration of a 2-D transposed convolution (PyTorch's {@code nn.ConvTranspose2d}), NCHW.
 *
 * <p>Shapes: input {@code [N, C, H, W]}; weight {@code [C, O / groups, kH, kW]} (PyTorch's layout: input channels
 * first); bias {@code [O]}; output {@code [N, O, oH, oW]} with
 * <pre>
 *   oH = (H - 1) * strideH - 2 * padH + dilationH * (kH - 1) + outputPadH + 1
 * </pre>
 * (likewise for W). Input channel {@code i} belongs to group {@code g = i / (C / groups)}; weight entry
 * {@code [i, j, kh, kw]} feeds output channel {@code g * (O / groups) + j}. That is the axis a BatchNorm fold
 * scales: within each group, dimension 1, offset by the group; not dimension 0, and not dimension 1 alone once
 * {@code groups > 1} (see {@link #outputChannelOf}).
 *
 * <p>The transposed conv is the adjoint of the conv from O to C channels with the same weight (read as that conv's
 * {@code [C, O/groups, kH, kW]}): its forward is that conv's input gradient, its input gradient that conv's forward.
 *
 * @param inChannels C
 * @param outChannels O
 * @param kernelH kernel height
 * @param kernelW kernel width
 * @param strideH vertical stride
 * @param strideW horizontal stride
 * @param padH rows of implicit zero padding removed from each side of the full output
 * @param padW columns removed from each side
 * @param outputPadH rows added at the bottom of the output, {@code < strideH}
 * @param outputPadW columns added at the right of the output, {@code < strideW}
 * @param dilationH vertical dilation
 * @param dilationW horizontal dilation
 * @param groups number of groups, dividing both C and O
 * @param bias whether the layer adds a bias
 * @throws IllegalArgumentException naming the first setting out of range (sizes below 1, negative padding, output
 *                                  padding not below the stride, groups not dividing both channel counts)
 */
@Immutable
public record ConvTransposeConfig(
        int inChannels,
        int outChannels,
        int kernelH,
        int kernelW,
        int strideH,
        int strideW,
        int padH,
        int padW,
        int outputPadH,
        int outputPadW,
        int dilationH,
        int dilationW,
        int groups,
        boolean bias)
        implements ProducerConfig {

    public ConvTransposeConfig {
        ConvGeometry.check(inChannels, outChannels, kernelH, kernelW, strideH, strideW, dilationH, dilationW, groups);
        Checks.nonNegative("padH", padH);
        Checks.nonNegative("padW", padW);
        Checks.nonNegative("outputPadH", outputPadH);
        Checks.nonNegative("outputPadW", outputPadW);
        // PyTorch also accepts output padding below the dilation; the output rows that adds lie beyond every
        // input's reach of the adjoint conv, whose output size would then no longer be H.
        if (outputPadH >= strideH || outputPadW >= strideW) {
            throw new IllegalArgumentException("outputPadding: expected < stride " + strideH + "x" + strideW + ", got "
                    + outputPadH + "x" + outputPadW);
        }
    }

    /** @return a builder of a transposed conv from {@code inChannels} to {@code outChannels}, 3x3, stride 1 */
    public static Builder builder(int inChannels, int outChannels) {
        return new Builder(inChannels, outChannels);
    }

    @Override
    public String kind() {
        return "conv_transpose2d";
    }

    /** @return input channels per group */
    public int inChannelsPerGroup() {
        return inChannels / groups;
    }

    /** @return output channels per group */
    public int outChannelsPerGroup() {
        return outChannels / groups;
    }

    @Override
    public long[] weightShape() {
        return new long[] {inChannels, outChannelsPerGroup(), kernelH, kernelW};
    }

    @Override
    public int outputChannelOf(long flatIndex) {
        long perInput = (long) outChannelsPerGroup() * kernelH * kernelW;
        int i = (int) (flatIndex / perInput);
        int j = (int) (flatIndex % perInput / ((long) kernelH * kernelW));
        return i / inChannelsPerGroup() * outChannelsPerGroup() + j;
    }

    @Override
    public long fanIn() {
        return (long) outChannelsPerGroup() * kernelH * kernelW;
    }

    /** @return output height for an input of height {@code inH} (&lt; 1 when the padding removes everything) */
    public long outputHeight(long inH) {
        return (inH - 1) * strideH - 2L * padH + (long) dilationH * (kernelH - 1) + outputPadH + 1;
    }

    /** @return output width for an input of width {@code inW} */
    public long outputWidth(long inW) {
        return (inW - 1) * strideW - 2L * padW + (long) dilationW * (kernelW - 1) + outputPadW + 1;
    }

    @Override
    public long[] outputShape(long[] inputShape) {
        checkInputShape("input", inputShape);
        return new long[] {inputShape[0], outChannels, outputHeight(inputShape[2]), outputWidth(inputShape[3])};
    }

    @Override
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
        long oh = outputHeight(shape[2]);
        long ow = outputWidth(shape[3]);
        if (oh < 1 || ow < 1 || oh > Integer.MAX_VALUE || ow > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(name + ": spatial size " + shape[2] + "x" + shape[3] + " gives an "
                    + "output of " + oh + "x" + ow + " with padding " + padH + "x" + padW + "; expected at least 1x1");
        }
    }

    @Override
    public long multiplyAdds(long[] inputShape) {
        return inputShape[0] * inputShape[2] * inputShape[3] * weightCount();
    }

    @Override
    public String toString() {
        return "conv_transpose2d " + inChannels + "->" + outChannels + " k" + kernelH + "x" + kernelW + " s" + strideH
                + "x" + strideW + " p" + padH + "x" + padW + " op" + outputPadH + "x" + outputPadW + " d" + dilationH
                + "x" + dilationW + " g" + groups + (bias ? " bias" : " nobias");
    }

    /** Builder of {@link ConvTransposeConfig}; {@link #build()} validates. Defaults: 3x3, stride 1, no padding. */
    @NotThreadSafe
    public static final class Builder extends ConvGeometry.Builder<Builder> {
        private int padH;
        private int padW;
        private int outputPadH;
        private int outputPadW;

        private Builder(int inChannels, int outChannels) {
            super(inChannels, outChannels);
        }

        @Override
        Builder self() {
            return this;
        }

        /** @param p rows and columns removed from each side of the full output */
        public Builder padding(int p) {
            return padding(p, p);
        }

        /**
         * @param ph rows removed from top and bottom
         * @param pw columns removed from left and right
         */
        public Builder padding(int ph, int pw) {
            this.padH = ph;
            this.padW = pw;
            return this;
        }

        /** @param p rows and columns added at the bottom and right of the output, below the stride */
        public Builder outputPadding(int p) {
            return outputPadding(p, p);
        }

        /**
         * @param ph rows added at the bottom
         * @param pw columns added at the right
         */
        public Builder outputPadding(int ph, int pw) {
            this.outputPadH = ph;
            this.outputPadW = pw;
            return this;
        }

        /** @throws IllegalArgumentException naming the first invalid setting */
        public ConvTransposeConfig build() {
            return new ConvTransposeConfig(
                    inChannels,
                    outChannels,
                    kernelH,
                    kernelW,
                    strideH,
                    strideW,
                    padH,
                    padW,
                    outputPadH,
                    outputPadW,
                    dilationH,
                    dilationW,
                    groups,
                    bias);
        }
    }
}
