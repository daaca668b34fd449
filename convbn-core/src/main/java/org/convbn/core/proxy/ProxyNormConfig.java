package org.convbn.core.proxy;

import net.jcip.annotations.Immutable;
import org.convbn.core.Checks;

/**
 * Immutable configuration of a batch-independent normalisation: GroupNorm without affine, then a
 * proxy-normalised activation (Labatie et al., "Proxy-Normalizing Activations to Match Batch Normalization while
 * Removing Batch Dependence", 2021):
 * <pre>
 *   y   = GroupNorm(v)                                   per sample, per group of channels, no affine
 *   z   = (phi(gamma y + beta) - mu) / sqrt(sigma2 + proxyEps)
 *   mu, sigma2 = mean and variance over k of phi(gamma (betaT + (1 + gammaT) u_k) + beta)
 * </pre>
 * with u_k the K {@link GaussianQuantiles}. gamma, beta, betaT, gammaT are trainable per channel, and gradients flow
 * through mu and sigma2. No statistic depends on the batch, so a sample's output ignores the other samples and
 * training and inference compute the same function.
 *
 * @param channels channels normalised
 * @param groups GroupNorm groups, dividing {@code channels}; 1 is LayerNorm
 * @param groupNormEps added to each group's variance, &gt; 0
 * @param proxyEps eps of the proxy normalisation, &gt; 0 (0.03 in the paper)
 * @param proxyPoints K, the number of Gaussian quantiles (200)
 * @param activation phi
 */
@Immutable
public record ProxyNormConfig(
        int channels, int groups, double groupNormEps, double proxyEps, int proxyPoints, Activation activation) {
    public static final double DEFAULT_GROUP_NORM_EPS = 1e-5;
    public static final double DEFAULT_PROXY_EPS = 0.03;
    public static final int DEFAULT_PROXY_POINTS = 200;

    public ProxyNormConfig {
        Checks.positive("channels", channels);
        Checks.positive("groups", groups);
        if (channels % groups != 0) {
            throw new IllegalArgumentException(
                    "groups: expected a divisor of channels=" + channels + ", got " + groups);
        }
        Checks.positiveFinite("groupNormEps", groupNormEps);
        Checks.positiveFinite("proxyEps", proxyEps);
        Checks.positive("proxyPoints", proxyPoints);
        if (activation == null) {
            throw new NullPointerException("activation: expected RELU, SILU or IDENTITY, got null");
        }
    }

    /** @return GroupNorm with {@code groups} groups and the paper's proxy settings */
    public static ProxyNormConfig groupNorm(int channels, int groups, Activation activation) {
        return new ProxyNormConfig(
                channels, groups, DEFAULT_GROUP_NORM_EPS, DEFAULT_PROXY_EPS, DEFAULT_PROXY_POINTS, activation);
    }

    /** @return LayerNorm (GroupNorm with one group) and the paper's proxy settings */
    public static ProxyNormConfig layerNorm(int channels, Activation activation) {
        return groupNorm(channels, 1, activation);
    }
}
