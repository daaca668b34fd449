package org.convbn.core;

import net.jcip.annotations.Immutable;

/**
 * Zero padding of a convolution: either explicit and symmetric ({@code h} rows above and below, {@code w}
 * columns left and right) or "same".
 *
 * <p>"same" keeps {@code out = ceil(in / stride)} and pads {@code total = max((out - 1) * stride + (k - 1) *
 * dilation + 1 - in, 0)} in all, {@code total / 2} (rounded down) before and the rest after, as TensorFlow and
 * libnd4j do; at stride 1 this is also PyTorch's {@code padding="same"}.
 *
 * @param isSame true for "same" padding, in which case {@code h} and {@code w} are 0
 * @param h rows of zeros above and below (explicit padding)
 * @param w columns of zeros left and right (explicit padding)
 */
@Immutable
public record Padding(boolean isSame, int h, int w) {
    private static final Padding SAME = new Padding(true, 0, 0);

    public Padding {
        Checks.nonNegative("padding.h", h);
        Checks.nonNegative("padding.w", w);
        if (isSame && (h != 0 || w != 0)) {
            throw new IllegalArgumentException("padding: \"same\" takes no explicit sizes, got h=" + h + ", w=" + w);
        }
    }

    /** @return explicit symmetric padding of {@code h} rows and {@code w} columns */
    public static Padding of(int h, int w) {
        return new Padding(false, h, w);
    }

    /** @return explicit symmetric padding of {@code p} on every side */
    public static Padding of(int p) {
        return of(p, p);
    }

    /** @return "same" padding */
    public static Padding same() {
        return SAME;
    }

    /** Output length along one axis; &lt; 1 when the input is too small. */
    static int outputLength(boolean same, int in, int kernel, int stride, int dilation, int explicitPad) {
        if (same) {
            return (in + stride - 1) / stride;
        }
        int effectiveKernel = (kernel - 1) * dilation + 1;
        int span = in + 2 * explicitPad - effectiveKernel;
        return span < 0 ? 0 : span / stride + 1;
    }

    /**
     * Zeros added before the first element along one axis (top or left).
     */
    static int before(boolean same, int in, int kernel, int stride, int dilation, int explicitPad) {
        if (!same) {
            return explicitPad;
        }
        int out = outputLength(true, in, kernel, stride, dilation, 0);
        int total = Math.max((out - 1) * stride + (kernel - 1) * dilation + 1 - in, 0);
        return total / 2;
    }

    @Override
    public String toString() {
        return isSame ? "same" : h + "," + w;
    }
}
