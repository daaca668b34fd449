package org.convbn.core.proxy;

import net.jcip.annotations.ThreadSafe;

/**
 * Deterministic Gaussian quantiles: {@code u_k = sqrt(2) erfinv(2 (k + 1/2) / K - 1) = Phi^-1((k + 1/2) / K)}, the
 * K points that stand in for a standard normal variable in a proxy-normalised activation.
 */
@ThreadSafe
public final class GaussianQuantiles {
    private GaussianQuantiles() {}

    /**
     * @param count K &gt;= 1
     * @return u_0 &lt; ... &lt; u_{K-1}, symmetric about 0, a new array
     */
    public static double[] of(int count) {
        if (count < 1) {
            throw new IllegalArgumentException("count: expected >= 1, got " + count);
        }
        double[] u = new double[count];
        for (int k = 0; k < count; k++) {
            u[k] = inverseNormalCdf((k + 0.5) / count);
        }
        return u;
    }

    /**
     * Phi^-1(p) by Acklam's rational approximation (relative error below 1.2e-9) with one Newton step on the normal
     * CDF computed from {@link #erfc}, which brings it to about 1e-15 for p in [1e-10, 1 - 1e-10].
     *
     * @param p in (0, 1)
     * @return the standard normal quantile of p
     */
    public static double inverseNormalCdf(double p) {
        if (!(p > 0 && p < 1)) {
            throw new IllegalArgumentException("p: expected a value in (0, 1), got " + p);
        }
        double x = acklam(p);
        // Newton on Phi(x) - p: Phi(x) = erfc(-x / sqrt 2) / 2, Phi'(x) = exp(-x^2 / 2) / sqrt(2 pi).
        double e = 0.5 * erfc(-x / Math.sqrt(2)) - p;
        return x - e * Math.sqrt(2 * Math.PI) * Math.exp(x * x / 2);
    }

    private static final double[] A = {
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.383577518672690e+02,
        -3.066479806614716e+01,
        2.506628277459239e+00
    };
    private static final double[] B = {
        -5.447609879822406e+01,
        1.615858368580409e+02,
        -1.556989798598866e+02,
        6.680131188771972e+01,
        -1.328068155288572e+01
    };
    private static final double[] C = {
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00
    };
    private static final double[] D = {
        7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00
    };
    private static final double P_LOW = 0.02425;

    private static double acklam(double p) {
        if (p < P_LOW) {
            double q = Math.sqrt(-2 * Math.log(p));
            return (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
                    / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1);
        }
        if (p > 1 - P_LOW) {
            return -acklam(1 - p);
        }
        double q = p - 0.5;
        double r = q * q;
        return (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5])
                * q
                / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1);
    }

    /**
     * The complementary error function, by the continued fraction for |x| &gt;= 2 and the Taylor series of erf below
     * (both to about 1e-16 relative).
     */
    static double erfc(double x) {
        if (x < 0) {
            return 2 - erfc(-x);
        }
        if (x < 2) {
            // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
            double term = x;
            double sum = x;
            for (int n = 1; n < 60; n++) {
                term *= -x * x / n;
                double add = term / (2 * n + 1);
                sum += add;
                if (Math.abs(add) < 1e-17 * Math.abs(sum)) {
                    break;
                }
            }
            return 1 - 2 / Math.sqrt(Math.PI) * sum;
        }
        // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + 2/(x + ...))))), evaluated bottom up.
        double f = x;
        for (int n = 60; n >= 1; n--) {
            f = x + (n / 2.0) / f;
        }
        return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
    }
}
