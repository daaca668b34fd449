package org.convbn.testkit.reference;

import org.convbn.core.Checks;
import org.convbn.core.ConvBNConfig;

/**
 * The unfolded tensors of a ConvBN block in float64, for the reference implementation.
 *
 * @param weight W {@code [O, C/groups, kH, kW]}
 * @param bias b {@code [O]}, or null when the conv has no bias
 * @param gamma BN scale {@code [O]}, or null when BN is not affine (then 1)
 * @param beta BN shift {@code [O]}, or null when BN is not affine (then 0)
 * @param runningMean {@code [O]}
 * @param runningVar {@code [O]}, non-negative
 */
public record ReferenceParameters(
        Tensor weight, Tensor bias, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar) {

    /**
     * Checks every tensor's presence and shape against {@code config}.
     *
     * @throws IllegalArgumentException naming the first tensor that does not fit
     */
    public ReferenceParameters validate(ConvBNConfig config) {
        int o = config.channels();
        int[] vector = {o};
        Checks.shape("weight", Tensor.dims(config.producer().weightShape()), weight.shape());
        presence("bias", bias, config.producer().bias());
        presence("gamma", gamma, config.bn().affine());
        presence("beta", beta, config.bn().affine());
        if (bias != null) {
            Checks.shape("bias", vector, bias.shape());
        }
        if (gamma != null) {
            Checks.shape("gamma", vector, gamma.shape());
            Checks.shape("beta", vector, beta.shape());
        }
        Checks.shape("runningMean", vector, runningMean.shape());
        Checks.shape("runningVar", vector, runningVar.shape());
        return this;
    }

    /** @return gamma[c], or 1 without affine */
    public double gammaAt(int c) {
        return gamma == null ? 1.0 : gamma.data()[c];
    }

    /** @return beta[c], or 0 without affine */
    public double betaAt(int c) {
        return beta == null ? 0.0 : beta.data()[c];
    }

    /** @return b[c], or 0 without a conv bias */
    public double biasAt(int c) {
        return bias == null ? 0.0 : bias.data()[c];
    }

    /** @return a deep copy */
    public ReferenceParameters copy() {
        return new ReferenceParameters(
                weight.copy(),
                bias == null ? null : bias.copy(),
                gamma == null ? null : gamma.copy(),
                beta == null ? null : beta.copy(),
                runningMean.copy(),
                runningVar.copy());
    }

    private static void presence(String name, Tensor t, boolean expected) {
        if ((t != null) != expected) {
            throw new IllegalArgumentException(name + ": expected " + (expected ? "a tensor" : "null")
                    + " for this configuration, got " + (t == null ? "null" : t));
        }
    }
}
