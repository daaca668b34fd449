package org.convbn.core.proxy;

import net.jcip.annotations.NotThreadSafe;

/**
 * The proxy's per-channel mean and variance and their gradients, in float64: weight-sized work (K points per
 * channel), shared by every implementation of the proxy-normalised activation.
 *
 * <p>With {@code t_k = betaT + (1 + gammaT) u_k}, {@code q_k = gamma t_k + beta}, {@code p_k = phi(q_k)}:
 * {@code mu = (1/K) sum p_k}, {@code sigma2 = (1/K) sum (p_k - mu)^2}. Backward: {@code dL/dp_k = dmu / K +
 * dsigma2 * 2 (p_k - mu) / K} (mu's own dependence cancels because the deviations sum to 0), then with
 * {@code d_k = dL/dp_k phi'(q_k)}: {@code dgamma = sum d_k t_k}, {@code dbeta = sum d_k},
 * {@code dbetaT = gamma sum d_k}, {@code dgammaT = gamma sum d_k u_k}.
 *
 * @param mean mu per channel
 * @param variance sigma2 per channel
 */
@NotThreadSafe
public record ProxyMoments(double[] mean, double[] variance) {

    /**
     * @param phi the activation
     * @param u the quantiles, not modified
     * @param gamma PN scale per channel, not modified
     * @param beta PN shift per channel, not modified
     * @param betaTilde the proxy's mean per channel, not modified
     * @param gammaTilde the proxy's scale offset per channel, not modified
     * @return mu and sigma2 per channel
     */
    public static ProxyMoments of(
            Activation phi, double[] u, double[] gamma, double[] beta, double[] betaTilde, double[] gammaTilde) {
        int c = gamma.length;
        double[] mean = new double[c];
        double[] var = new double[c];
        for (int ch = 0; ch < c; ch++) {
            double s = 0;
            for (double uk : u) {
                s += phi.apply(gamma[ch] * (betaTilde[ch] + (1 + gammaTilde[ch]) * uk) + beta[ch]);
            }
            double m = s / u.length;
            double ss = 0;
            for (double uk : u) {
                double d = phi.apply(gamma[ch] * (betaTilde[ch] + (1 + gammaTilde[ch]) * uk) + beta[ch]) - m;
                ss += d * d;
            }
            mean[ch] = m;
            var[ch] = ss / u.length;
        }
        return new ProxyMoments(mean, var);
    }

    /**
     * The gradients of the loss through mu and sigma2 with respect to the four parameters (arguments as
     * {@link #of}, none modified).
     *
     * @param dMean dL/dmu per channel, not modified
     * @param dVariance dL/dsigma2 per channel, not modified
     * @return {gamma, beta, betaTilde, gammaTilde} gradients, new arrays
     */
    public double[][] backward(
            Activation phi,
            double[] u,
            double[] gamma,
            double[] beta,
            double[] betaTilde,
            double[] gammaTilde,
            double[] dMean,
            double[] dVariance) {
        int c = gamma.length;
        double[][] out = new double[4][c];
        for (int ch = 0; ch < c; ch++) {
            double sumD = 0;
            double sumDt = 0;
            double sumDu = 0;
            for (double uk : u) {
                double t = betaTilde[ch] + (1 + gammaTilde[ch]) * uk;
                double q = gamma[ch] * t + beta[ch];
                double dp = (dMean[ch] + dVariance[ch] * 2 * (phi.apply(q) - mean[ch])) / u.length;
                double d = dp * phi.derivative(q);
                sumD += d;
                sumDt += d * t;
                sumDu += d * uk;
            }
            out[0][ch] = sumDt;
            out[1][ch] = sumD;
            out[2][ch] = gamma[ch] * sumD;
            out[3][ch] = gamma[ch] * sumDu;
        }
        return out;
    }
}
