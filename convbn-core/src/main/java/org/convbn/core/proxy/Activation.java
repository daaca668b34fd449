package org.convbn.core.proxy;

/** The activations phi a proxy-normalised activation supports, with their derivatives, on doubles. */
public enum Activation {
    /** {@code max(x, 0)}; derivative 1 for x &gt; 0, else 0. */
    RELU {
        @Override
        public double apply(double x) {
            return x > 0 ? x : 0;
        }

        @Override
        public double derivative(double x) {
            return x > 0 ? 1 : 0;
        }
    },
    /**
     * The identity, for a layer without activation (an inverted residual's projection): the proxy normalisation then
     * reduces to a per-channel affine of the GroupNorm output whose shift and scale are betaT and gammaT.
     */
    IDENTITY {
        @Override
        public double apply(double x) {
            return x;
        }

        @Override
        public double derivative(double x) {
            return 1;
        }
    },
    /** SiLU (swish): {@code x * sigmoid(x)}; derivative {@code s (1 + x (1 - s))} with {@code s = sigmoid(x)}. */
    SILU {
        @Override
        public double apply(double x) {
            return x / (1 + Math.exp(-x));
        }

        @Override
        public double derivative(double x) {
            double s = 1 / (1 + Math.exp(-x));
            return s * (1 + x * (1 - s));
        }
    };

    /** @return phi(x) */
    public abstract double apply(double x);

    /** @return phi'(x) */
    public abstract double derivative(double x);
}
