package org.convbn.nd4j.kernel;

import java.util.Arrays;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * How a feature map of logical shape {@code [N, C, H, W]} lies in memory. Elementwise operations do not care;
 * per-channel ones and convolutions do, so feature maps only meet kernels that know their layout.
 */
public enum Layout {
    /** {@code [N, C, H, W]}, row-major: what users, ND4J and DL4J exchange. */
    NCHW,
    /**
     * Channels in blocks of 8 innermost, {@code [N, C/8, H, W, 8]} (oneDNN's {@code nChw8c}): the layout the AVX2
     * convolution kernels compute in, so a network that keeps its feature maps this way never reorders them.
     * Only for C divisible by 8.
     */
    BLOCKED8;

    /** Channels per block of {@link #BLOCKED8}. */
    public static final int BLOCK = 8;

    /**
     * @param t a feature map, not modified
     * @return its layout: rank 4 is NCHW, rank 5 with an innermost 8 is BLOCKED8
     * @throws IllegalArgumentException for any other rank
     */
    public static Layout of(INDArray t) {
        if (t.rank() == 4) {
            return NCHW;
        }
        if (t.rank() == 5 && t.size(4) == BLOCK) {
            return BLOCKED8;
        }
        throw new IllegalArgumentException("t: expected a feature map [N, C, H, W] or [N, C/8, H, W, 8], got shape "
                + Arrays.toString(t.shape()));
    }

    /**
     * @param t a feature map in either layout, not modified
     * @return its logical shape {@code [N, C, H, W]}
     */
    public static long[] logicalShape(INDArray t) {
        return of(t) == NCHW ? t.shape() : new long[] {t.size(0), t.size(1) * BLOCK, t.size(2), t.size(3)};
    }

    /**
     * @param logical {@code [N, C, H, W]}, not modified
     * @return the physical shape of a feature map of that logical shape in this layout
     * @throws IllegalArgumentException for BLOCKED8 when C is not divisible by 8
     */
    public long[] physicalShape(long[] logical) {
        if (this == NCHW) {
            return logical.clone();
        }
        if (logical[1] % BLOCK != 0) {
            throw new IllegalArgumentException("logical: BLOCKED8 needs channels divisible by " + BLOCK + ", got "
                    + Arrays.toString(logical));
        }
        return new long[] {logical[0], logical[1] / BLOCK, logical[2], logical[3], BLOCK};
    }
}
