package org.convbn.nd4j;

import net.jcip.annotations.ThreadSafe;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ParameterNames;
import org.convbn.nd4j.kernel.Arena;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The fold of BN into the conv and its inverse, validated, on tensors a caller owns: for frameworks that keep
 * parameters in their own storage and switch a layer to DEPLOY by overwriting them (see the DL4J layer). The
 * unvalidated functions are {@link ModeFunctions#fold} and {@link ModeFunctions#unfold}, which
 * {@link ConvBNBlock#setMode} runs on the tensors a block holds.
 *
 * <pre>
 *   s  = gamma / sqrt(var + eps)
 *   W' = s * W                      (each output channel scaled)
 *   b' = beta + s * (b - mean)
 * </pre>
 * and back, with the BN tensors kept: {@code W = W' / s}; {@code b = mean + (b' - beta) / s} when the conv has a
 * bias, else {@code beta = b' + s * mean}.
 */
@ThreadSafe
public final class Folding {
    /**
     * How far the folded bias of a block with neither conv bias nor BN shift may drift before unfolding is
     * refused: rounding of {@code -s * mean} in float32 (about 1e-7 relative on values of order 1) with margin.
     */
    static final double UNABSORBED_BIAS_TOLERANCE = 1e-5;

    private Folding() {}

    /**
     * @param config the block configuration
     * @param parameters gamma (null when BN is not affine) and the running variance are read; not modified
     * @return s = gamma / sqrt(var + eps), a new {@code [O]} array
     */
    public static INDArray scale(ConvBNConfig config, ConvBNParameters parameters) {
        return ModeFunctions.scale(Arena.direct(), config.bn(), parameters.gamma(), parameters.runningVar());
    }

    /**
     * @param config the block configuration
     * @param parameters W, b, gamma, beta, running statistics (validated against {@code config}); not modified
     * @return new arrays W', b', s
     * @throws IllegalArgumentException for a tensor that does not fit {@code config}, a negative running variance,
     *                                  or NaN or infinity in any tensor (named)
     */
    public static FoldedParameters fold(ConvBNConfig config, ConvBNParameters parameters) {
        parameters.validate(config);
        return ModeFunctions.fold(Arena.direct(), config, parameters, true);
    }

    /**
     * @param config the block configuration
     * @param folded W' and b' (s is recomputed from {@code kept}); not modified
     * @param kept the BN tensors gamma, beta, running statistics; not modified
     * @return new W and, per configuration, b or beta; gamma and the running statistics are {@code kept}'s arrays
     * @throws IllegalStateException if some s is 0 or not finite, or the folded bias changed although neither a conv
     *                               bias nor a BN shift can carry it back
     */
    public static ConvBNParameters unfold(ConvBNConfig config, FoldedParameters folded, BatchNormState kept) {
        if (folded.weight() == null || folded.bias() == null) {
            throw new IllegalArgumentException(ParameterNames.FOLDED_WEIGHT + ", " + ParameterNames.FOLDED_BIAS
                    + ": expected both arrays, got " + (folded.weight() == null ? "no weight" : "no bias"));
        }
        Tensors.requireShape(
                ParameterNames.FOLDED_WEIGHT, folded.weight(), config.producer().weightShape());
        Tensors.requireShape(ParameterNames.FOLDED_BIAS, folded.bias(), config.channels());
        return ModeFunctions.unfold(config, folded, kept, UNABSORBED_BIAS_TOLERANCE);
    }
}
