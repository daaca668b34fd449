package org.convbn.core;

import net.jcip.annotations.ThreadSafe;

/**
 * Presets of grouped ConvBN blocks, as in "Making EfficientNet More Efficient" (Masters et al., 2021): a fixed
 * number of input channels per group G instead of depthwise convs (G = 1) or full convs (G = C). G = 16 keeps most of
 * a full conv's accuracy per parameter at a fraction of its multiply-adds, and gives hardware dense enough work per
 * group; {@link Cost} counts the trade per block.
 *
 * <p>Each preset pads by {@code kernel / 2} (size-preserving at stride 1 for odd kernels) and has no conv bias
 * (BN's shift makes it redundant); BN uses the defaults of {@link BatchNormConfig#of}.
 */
@ThreadSafe
public final class GroupedBlocks {
    /** Input channels per group in the paper's grouped convs. */
    public static final int DEFAULT_GROUP_SIZE = 16;

    private GroupedBlocks() {}

    /** @return a block with {@link #DEFAULT_GROUP_SIZE} input channels per group */
    public static ConvBNConfig grouped(int in, int out, int kernel, int stride) {
        return grouped(in, out, kernel, stride, DEFAULT_GROUP_SIZE);
    }

    /**
     * @param in input channels C
     * @param out output channels O, divisible by the group count C / groupSize
     * @param kernel square kernel size
     * @param stride stride in both directions
     * @param groupSize input channels per group G: 1 is depthwise, C a full conv
     * @return the block configuration
     * @throws IllegalArgumentException if G does not divide C, or O is not divisible by C / G (named)
     */
    public static ConvBNConfig grouped(int in, int out, int kernel, int stride, int groupSize) {
        ConvConfig conv = ConvConfig.builder(in, out)
                .kernel(kernel)
                .stride(stride)
                .padding(kernel / 2)
                .groupSize(groupSize)
                .bias(false)
                .build();
        return ConvBNConfig.of(conv);
    }

    /** @return a depthwise block (G = 1) with {@code multiplier} output channels per input channel */
    public static ConvBNConfig depthwise(int channels, int multiplier, int kernel, int stride) {
        return grouped(channels, channels * multiplier, kernel, stride, 1);
    }
}
