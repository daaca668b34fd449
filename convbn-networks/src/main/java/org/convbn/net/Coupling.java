package org.convbn.net;

import net.jcip.annotations.Immutable;

/**
 * The two coefficients of a reversible stage's dual-residual streams:
 * {@code x_i = G_i(x_{i-1}) + beta y_{i-1}}, {@code y_i = x_{i-1}}, with {@code G_i(x) = relu(F_i(x) + alpha x)}.
 * alpha = 1, beta = 0 is the pretrained ResNet exactly; the inverse {@code y_{i-1} = (x_i - G_i(y_i)) / beta} needs
 * beta away from 0.
 *
 * @param alpha scale of the identity shortcut inside G
 * @param beta weight of the second stream, &gt;= 0
 */
@Immutable
public record Coupling(double alpha, double beta) {
    /** The pretrained network: alpha 1, beta 0. */
    public static final Coupling PRETRAINED = new Coupling(1, 0);

    public Coupling {
        if (!Double.isFinite(alpha)) {
            throw new IllegalArgumentException("alpha: expected a finite value, got " + alpha);
        }
        if (!(beta >= 0) || Double.isInfinite(beta)) {
            throw new IllegalArgumentException("beta: expected a finite value >= 0, got " + beta);
        }
    }

    /** How the coupling moves during fine-tuning, from (1, beta0) at progress 0 to (alphaEnd, 1) at progress 1. */
    @FunctionalInterface
    @Immutable
    public interface Schedule {
        /** @param progress in [0, 1] @return the coupling then */
        Coupling at(double progress);

        /** @return (1, beta0) throughout */
        static Schedule constant(double beta0) {
            return t -> new Coupling(1, beta0);
        }

        /** @return a straight line from (1, beta0) to (alphaEnd, 1) */
        static Schedule linear(double beta0, double alphaEnd) {
            return t -> interpolate(beta0, alphaEnd, clamp(t));
        }

        /** @return a half-cosine from (1, beta0) to (alphaEnd, 1): slow at both ends */
        static Schedule cosine(double beta0, double alphaEnd) {
            return t -> interpolate(beta0, alphaEnd, (1 - Math.cos(Math.PI * clamp(t))) / 2);
        }

        private static Coupling interpolate(double beta0, double alphaEnd, double w) {
            return new Coupling(1 + (alphaEnd - 1) * w, beta0 + (1 - beta0) * w);
        }

        private static double clamp(double t) {
            if (!(t >= 0 && t <= 1)) {
                throw new IllegalArgumentException("progress: expected a value in [0, 1], got " + t);
            }
            return t;
        }
    }
}
