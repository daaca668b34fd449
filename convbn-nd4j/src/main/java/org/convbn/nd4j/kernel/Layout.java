package org.convbn.nd4j.kernel;

import java.util.Arrays;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * How a feature map of logical shape {@code [N, C, H, W]} lies in memory: plain, or with its channels in blocks of b
 * innermost, {@code [N, C/b, H, W, b]} (oneDNN's {@code nChw8c}, {@code nChw16c}). Elementwise operations do not
 * care; per-channel ones and convolutions do, so feature maps only meet kernels that know their layout.
 *
 * <p>The block is the vector width of the CPU's convolution kernels in float32 lanes: oneDNN's AVX2 kernels compute
 * in blocks of 8, its AVX-512 kernels in blocks of 16. A network keeps each feature map in the layout its kernels
 * prefer ({@link Kernels#preferredLayout}), so it reorders activations only where that changes.
 */
public enum Layout {
    /** {@code [N, C, H, W]}, row-major: what users, ND4J and DL4J exchange. */
    NCHW(1),
    /** Channels in blocks of 8 innermost, {@code [N, C/8, H, W, 8]} (oneDNN's {@code nChw8c}, its AVX2 layout). */
    BLOCKED8(8),
    /**
     * Channels in blocks of 16 innermost, {@code [N, C/16, H, W, 16]} (oneDNN's {@code nChw16c}, its AVX-512
     * layout).
     */
    BLOCKED16(16);

    private final int block;

    Layout(int block) {
        this.block = block;
    }

    /** @return channels per block: 8 or 16, and 1 for NCHW */
    public int block() {
        return block;
    }

    /** @return whether the channels are blocked (not NCHW) */
    public boolean isBlocked() {
        return block > 1;
    }

    /**
     * @param channels a channel count
     * @return whether a feature map of that many channels can be laid out this way: always for NCHW, else when the
     *         block divides the channels
     */
    public boolean fits(long channels) {
        return channels % block == 0;
    }

    /**
     * @param preferred the layout wanted
     * @param channels a feature map's channel count
     * @return the layout with the largest block up to {@code preferred}'s that divides the channels (NCHW when none
     *         does): e.g. 24 channels with BLOCKED16 preferred lie in BLOCKED8
     */
    public static Layout largestFitting(Layout preferred, long channels) {
        // the constants are declared by growing block
        for (int i = preferred.ordinal(); i > 0; i--) {
            if (values()[i].fits(channels)) {
                return values()[i];
            }
        }
        return NCHW;
    }

    /**
     * @param t a feature map, not modified
     * @return its layout: rank 4 is NCHW, rank 5 with an innermost 8 or 16 is BLOCKED8 or BLOCKED16
     * @throws IllegalArgumentException for any other shape
     */
    public static Layout of(INDArray t) {
        Layout l = ofOrNull(t);
        if (l == null) {
            throw new IllegalArgumentException("t: expected a feature map [N, C, H, W] or [N, C/b, H, W, b] with b 8 "
                    + "or 16, got shape " + Arrays.toString(t.shape()));
        }
        return l;
    }

    /**
     * @param t any array (or null), not modified
     * @return its layout as {@link #of} reads it, or null when t is none or not a feature map
     */
    public static Layout ofOrNull(INDArray t) {
        if (t == null) {
            return null;
        }
        if (t.rank() == 4) {
            return NCHW;
        }
        if (t.rank() == 5) {
            for (Layout l : values()) {
                if (l.isBlocked() && t.size(4) == l.block) {
                    return l;
                }
            }
        }
        return null;
    }

    /**
     * @param t a feature map in any layout, not modified
     * @return its logical shape {@code [N, C, H, W]}
     */
    public static long[] logicalShape(INDArray t) {
        Layout l = of(t);
        return l == NCHW ? t.shape() : new long[] {t.size(0), t.size(1) * l.block, t.size(2), t.size(3)};
    }

    /**
     * @param logical {@code [N, C, H, W]}, not modified
     * @return the physical shape of a feature map of that logical shape in this layout
     * @throws IllegalArgumentException for a blocked layout whose block does not divide C
     */
    public long[] physicalShape(long[] logical) {
        if (this == NCHW) {
            return logical.clone();
        }
        if (!fits(logical[1])) {
            throw new IllegalArgumentException(
                    "logical: " + this + " needs channels divisible by " + block + ", got " + Arrays.toString(logical));
        }
        return new long[] {logical[0], logical[1] / block, logical[2], logical[3], block};
    }
}
