package org.convbn.core;

import net.jcip.annotations.NotThreadSafe;
import net.jcip.annotations.ThreadSafe;

/**
 * What a conv and a transposed conv share, as PyTorch's {@code _ConvNd} holds it for both: channels, kernel,
 * stride, dilation, groups and bias, their checks ({@link #check}) and their builder methods ({@link Builder}). Each
 * kind adds its own padding (a conv's explicit or "same" {@link Padding}; a transposed conv's padding and output
 * padding) and its own output geometry.
 */
@ThreadSafe
final class ConvGeometry {
    private ConvGeometry() {}

    /**
     * @throws IllegalArgumentException naming the first setting out of range: a size below 1, or groups that do not
     *                                  divide both channel counts
     */
    static void check(
            int inChannels,
            int outChannels,
            int kernelH,
            int kernelW,
            int strideH,
            int strideW,
            int dilationH,
            int dilationW,
            int groups) {
        Checks.positive("inChannels", inChannels);
        Checks.positive("outChannels", outChannels);
        Checks.positive("kernelH", kernelH);
        Checks.positive("kernelW", kernelW);
        Checks.positive("strideH", strideH);
        Checks.positive("strideW", strideW);
        Checks.positive("dilationH", dilationH);
        Checks.positive("dilationW", dilationW);
        Checks.positive("groups", groups);
        if (inChannels % groups != 0) {
            throw new IllegalArgumentException(
                    "groups: expected a divisor of inChannels=" + inChannels + ", got " + groups);
        }
        if (outChannels % groups != 0) {
            throw new IllegalArgumentException(
                    "groups: expected a divisor of outChannels=" + outChannels + ", got " + groups);
        }
    }

    /**
     * The builder methods both kinds share. Defaults: 3x3, stride 1, dilation 1, groups 1, bias on.
     *
     * @param <B> the concrete builder, returned by every setter
     */
    @NotThreadSafe
    abstract static class Builder<B extends Builder<B>> {
        final int inChannels;
        final int outChannels;
        int kernelH = 3;
        int kernelW = 3;
        int strideH = 1;
        int strideW = 1;
        int dilationH = 1;
        int dilationW = 1;
        int groups = 1;
        boolean bias = true;

        Builder(int inChannels, int outChannels) {
            this.inChannels = inChannels;
            this.outChannels = outChannels;
        }

        /** @return this builder, as its concrete type */
        abstract B self();

        /** @param k a square kernel's size */
        public B kernel(int k) {
            return kernel(k, k);
        }

        /**
         * @param kh kernel height
         * @param kw kernel width
         */
        public B kernel(int kh, int kw) {
            this.kernelH = kh;
            this.kernelW = kw;
            return self();
        }

        /** @param s the stride in both directions */
        public B stride(int s) {
            return stride(s, s);
        }

        /**
         * @param sh vertical stride
         * @param sw horizontal stride
         */
        public B stride(int sh, int sw) {
            this.strideH = sh;
            this.strideW = sw;
            return self();
        }

        /** @param d the dilation in both directions */
        public B dilation(int d) {
            return dilation(d, d);
        }

        /**
         * @param dh vertical dilation
         * @param dw horizontal dilation
         */
        public B dilation(int dh, int dw) {
            this.dilationH = dh;
            this.dilationW = dw;
            return self();
        }

        /** @param g the number of groups, dividing both channel counts (checked in build) */
        public B groups(int g) {
            this.groups = g;
            return self();
        }

        /** @param b whether the layer adds a bias */
        public B bias(boolean b) {
            this.bias = b;
            return self();
        }
    }
}
