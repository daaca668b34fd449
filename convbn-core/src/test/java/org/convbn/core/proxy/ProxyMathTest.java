package org.convbn.core.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The proxy's quantiles, moments and their gradients. */
class ProxyMathTest {
    /** Monte-Carlo samples: the standard error of a mean of O(1) values is ~1e-3. */
    private static final int SAMPLES = 1_000_000;
    /**
     * Quantiles vs Monte Carlo: 5 standard errors of the Monte-Carlo estimate plus the quantile rule's own error
     * with K = 200 (a few 1e-4 for these smooth and kinked functions).
     */
    private static final double MC_TOLERANCE = 5e-3;
    /**
     * The K = 200 midpoint quantiles' variance is 0.99360, not 1: the proxy variance falls short by this fraction of
     * the true one wherever the activation is linear (all of it for IDENTITY, whose channel of gamma 1.7 and gammaT
     * -0.4 has variance 1.04, short by 6.7e-3).
     */
    private static final double QUANTILE_VARIANCE_SHORTFALL = 0.0064;
    /** Central differences in float64 with step 1e-6. */
    private static final double FD_TOLERANCE = 1e-7;

    @Test
    void quantilesAreTheNormalsAndSymmetric() {
        assertEquals(1.959963984540054, GaussianQuantiles.inverseNormalCdf(0.975), 1e-13);
        assertEquals(-2.3263478740408408, GaussianQuantiles.inverseNormalCdf(0.01), 1e-13);
        assertEquals(0.0, GaussianQuantiles.inverseNormalCdf(0.5), 1e-15);
        assertEquals(0.15729920705028513, GaussianQuantiles.erfc(1), 1e-16);
        assertEquals(2.209049699858544e-05, GaussianQuantiles.erfc(3), 1e-19);
        double[] u = GaussianQuantiles.of(200);
        double sum = 0;
        double sq = 0;
        for (int k = 0; k < u.length; k++) {
            assertEquals(-u[k], u[u.length - 1 - k], 1e-12);
            if (k > 0) {
                assertTrue(u[k] > u[k - 1]);
            }
            sum += u[k];
            sq += u[k] * u[k];
        }
        assertEquals(0, sum, 1e-12);
        double variance = sq / u.length;
        assertTrue(variance > 0.98 && variance < 1, "the quantile rule's variance is just below 1: " + variance);
        assertThrows(IllegalArgumentException.class, () -> GaussianQuantiles.inverseNormalCdf(1.0));
    }

    @ParameterizedTest
    @EnumSource(Activation.class)
    void quantileMomentsAgreeWithMonteCarlo(Activation phi) {
        double[] u = GaussianQuantiles.of(ProxyNormConfig.DEFAULT_PROXY_POINTS);
        SplittableRandom rng = new SplittableRandom(5);
        double[] gamma = {1.0, 0.4, 1.7, 0.8};
        double[] beta = {0.0, 0.5, -0.3, -1.2};
        double[] betaT = {0.0, -0.2, 0.4, 0.1};
        double[] gammaT = {0.0, 0.3, -0.4, 0.6};
        ProxyMoments m = ProxyMoments.of(phi, u, gamma, beta, betaT, gammaT);
        for (int c = 0; c < gamma.length; c++) {
            double s = 0;
            double ss = 0;
            for (int i = 0; i < SAMPLES; i++) {
                double p = phi.apply(gamma[c] * (betaT[c] + (1 + gammaT[c]) * rng.nextGaussian()) + beta[c]);
                s += p;
                ss += p * p;
            }
            double mean = s / SAMPLES;
            double var = ss / SAMPLES - mean * mean;
            assertEquals(mean, m.mean()[c], MC_TOLERANCE, phi + " mean of channel " + c);
            assertEquals(
                    var,
                    m.variance()[c],
                    MC_TOLERANCE + QUANTILE_VARIANCE_SHORTFALL * var,
                    phi + " variance of channel " + c);
        }
    }

    /** L = sum_c (a_c mu_c + b_c sigma2_c): the backward against central differences of each parameter. */
    @ParameterizedTest
    @EnumSource(Activation.class)
    void momentGradientsMatchFiniteDifferences(Activation phi) {
        double[] u = GaussianQuantiles.of(ProxyNormConfig.DEFAULT_PROXY_POINTS);
        double[][] p = {{1.1, 0.6, 1.4}, {0.1, -0.4, 0.7}, {0.05, 0.3, -0.25}, {0.2, -0.3, 0.45}};
        double[] a = {0.7, -1.3, 0.4};
        double[] b = {-0.5, 0.9, 1.6};
        ProxyMoments m = ProxyMoments.of(phi, u, p[0], p[1], p[2], p[3]);
        double[][] grads = m.backward(phi, u, p[0], p[1], p[2], p[3], a, b);
        double h = 1e-6;
        for (int which = 0; which < 4; which++) {
            for (int c = 0; c < 3; c++) {
                double keep = p[which][c];
                p[which][c] = keep + h;
                double plus = loss(phi, u, p, a, b);
                p[which][c] = keep - h;
                double minus = loss(phi, u, p, a, b);
                p[which][c] = keep;
                assertEquals(
                        (plus - minus) / (2 * h),
                        grads[which][c],
                        FD_TOLERANCE,
                        phi + " parameter " + which + " channel " + c);
            }
        }
    }

    private static double loss(Activation phi, double[] u, double[][] p, double[] a, double[] b) {
        ProxyMoments m = ProxyMoments.of(phi, u, p[0], p[1], p[2], p[3]);
        double l = 0;
        for (int c = 0; c < a.length; c++) {
            l += a[c] * m.mean()[c] + b[c] * m.variance()[c];
        }
        return l;
    }

    @Test
    void configRejectsBadSettings() {
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> ProxyNormConfig.groupNorm(12, 5, Activation.RELU));
        assertTrue(e.getMessage().contains("groups") && e.getMessage().contains("12"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new ProxyNormConfig(8, 2, 1e-5, 0, 200, Activation.SILU));
        assertThrows(NullPointerException.class, () -> ProxyNormConfig.layerNorm(8, null));
    }
}
