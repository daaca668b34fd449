package org.convbn.core;

import net.jcip.annotations.Immutable;

/**
 * Immutable configuration of a BatchNorm over the channels of an NCHW tensor.
 *
 * <p>Running statistics follow PyTorch's convention by default, which is what imported weights expect: the batch
 * variance used to normalise is the biased one (divided by n = N*H*W), the running variance is updated with
 * the unbiased one (divided by n - 1), and {@code running <- (1 - momentum) * running + momentum * batch}.
 * DL4J's BatchNormalization updates the running variance with the biased one instead; a block that must track
 * it exactly sets {@code unbiasedRunningVar} to false.
 *
 * @param channels number of channels normalised
 * @param eps added to the variance before the square root, &gt; 0
 * @param momentum weight of the batch statistic in the running update, in [0, 1]
 * @param affine whether BN has a learnable scale gamma and shift beta (otherwise gamma = 1, beta = 0)
 * @param unbiasedRunningVar whether the running variance is updated with the unbiased batch variance
 *                           (PyTorch, the default) or the biased one (DL4J)
 */
@Immutable
public record BatchNormConfig(int channels, double eps, double momentum, boolean affine, boolean unbiasedRunningVar) {
    /** PyTorch's default eps. */
    public static final double DEFAULT_EPS = 1e-5;
    /** PyTorch's default momentum. */
    public static final double DEFAULT_MOMENTUM = 0.1;

    public BatchNormConfig {
        Checks.positive("channels", channels);
        Checks.positiveFinite("eps", eps);
        Checks.unitInterval("momentum", momentum);
    }

    /** BN with PyTorch's unbiased running variance. */
    public BatchNormConfig(int channels, double eps, double momentum, boolean affine) {
        this(channels, eps, momentum, affine, true);
    }

    /** @return BN over {@code channels} with eps 1e-5, momentum 0.1, affine */
    public static BatchNormConfig of(int channels) {
        return new BatchNormConfig(channels, DEFAULT_EPS, DEFAULT_MOMENTUM, true);
    }

    /** @return a copy with another eps */
    public BatchNormConfig withEps(double newEps) {
        return new BatchNormConfig(channels, newEps, momentum, affine, unbiasedRunningVar);
    }

    /** @return a copy with another momentum */
    public BatchNormConfig withMomentum(double newMomentum) {
        return new BatchNormConfig(channels, eps, newMomentum, affine, unbiasedRunningVar);
    }

    /** @return a copy that updates the running variance with the unbiased (true) or biased (false) batch variance */
    public BatchNormConfig withUnbiasedRunningVar(boolean unbiased) {
        return new BatchNormConfig(channels, eps, momentum, affine, unbiased);
    }
}
