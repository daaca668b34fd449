package org.convbn.core;

import net.jcip.annotations.ThreadSafe;

/**
 * Names of a block's tensors, following PyTorch's state_dict naming of a {@code conv} / {@code bn} pair so that
 * weights map one-to-one.
 */
@ThreadSafe
public final class ParameterNames {
    /** Conv weight W {@code [O, C/groups, kH, kW]}. */
    public static final String CONV_WEIGHT = "conv.weight";
    /** Conv bias b {@code [O]} (only when the conv has a bias). */
    public static final String CONV_BIAS = "conv.bias";
    /** BN scale gamma {@code [O]} (only when BN is affine). */
    public static final String BN_WEIGHT = "bn.weight";
    /** BN shift beta {@code [O]} (only when BN is affine). */
    public static final String BN_BIAS = "bn.bias";
    /** BN running mean {@code [O]}: a buffer, never trained by gradients. */
    public static final String BN_RUNNING_MEAN = "bn.running_mean";
    /** BN running variance {@code [O]}: a buffer, never trained by gradients. */
    public static final String BN_RUNNING_VAR = "bn.running_var";
    /** Folded weight W' = s * W {@code [O, C/groups, kH, kW]}: DEPLOY's parameter. */
    public static final String FOLDED_WEIGHT = "folded.weight";
    /** Folded bias b' = beta + s * (b - mean) {@code [O]}: DEPLOY's parameter. */
    public static final String FOLDED_BIAS = "folded.bias";

    private ParameterNames() {}
}
