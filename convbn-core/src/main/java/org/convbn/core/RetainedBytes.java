package org.convbn.core;

import net.jcip.annotations.Immutable;

/**
 * Exact bytes a block keeps between its forward and its backward, split into activation-sized tensors (those
 * that scale with batch and resolution) and weight-sized ones.
 *
 * <p>The numbers follow from the mode and the shapes alone (see {@link #predict}), so they are deterministic and
 * may be asserted in tests; the block reports the bytes of the tensors it really holds.
 *
 * @param activationBytes bytes of saved tensors shaped like an input or output feature map
 * @param weightBytes bytes of saved tensors shaped like a weight or a per-channel vector
 */
@Immutable
public record RetainedBytes(long activationBytes, long weightBytes) {
    /** Nothing retained. */
    public static final RetainedBytes NONE = new RetainedBytes(0, 0);

    public RetainedBytes {
        if (activationBytes < 0 || weightBytes < 0) {
            throw new IllegalArgumentException(
                    "bytes: expected >= 0, got activation=" + activationBytes + ", weight=" + weightBytes);
        }
    }

    /** @return activation plus weight bytes */
    public long total() {
        return activationBytes + weightBytes;
    }

    /** @return the sum of this and {@code other} */
    public RetainedBytes plus(RetainedBytes other) {
        return new RetainedBytes(activationBytes + other.activationBytes, weightBytes + other.weightBytes);
    }

    /**
     * What a block of this configuration keeps between forward and backward in {@code mode}: the bytes of the
     * tensors the table in {@link Mode} lists (TRAIN's batch mean and variance counted as weight-sized).
     *
     * @param config the block configuration
     * @param mode the mode
     * @param inputShape the block's input shape ({@code [N, C, H, W]}, or {@code [N, I(, L)]} for a linear block), not
     *                   modified
     * @param bytesPerElement 4 for float32, 8 for float64
     * @return the bytes retained
     * @throws IllegalArgumentException if the input shape does not fit the producer
     */
    public static RetainedBytes predict(ConvBNConfig config, Mode mode, long[] inputShape, int bytesPerElement) {
        return predict(config, mode, inputShape, bytesPerElement, bytesPerElement);
    }

    /**
     * {@link #predict(ConvBNConfig, Mode, long[], int)} in mixed precision: feature maps and parameters in widths of
     * their own (the TUNE fold's kept weight W' is a parameter-width tensor).
     *
     * @param featureMapBytes the width the feature maps are stored in (2 for bfloat16, see {@link Precision})
     * @param parameterBytes the width of parameters and per-channel vectors (4 for float32)
     */
    public static RetainedBytes predict(
            ConvBNConfig config, Mode mode, long[] inputShape, int featureMapBytes, int parameterBytes) {
        long[] out = config.producer().outputShape(inputShape);
        long x = product(inputShape) * featureMapBytes;
        long y = product(out) * featureMapBytes;
        long channel = (long) config.channels() * parameterBytes;
        long weight = config.producer().weightCount() * parameterBytes;
        return switch (mode) {
            case TRAIN -> new RetainedBytes(x + y, 2 * channel);
            case EVAL -> new RetainedBytes(x + y, 0);
            case DEPLOY -> new RetainedBytes(x, 0);
            case TUNE -> new RetainedBytes(x, (config.tuneFold() == TuneFold.KEEP ? weight : 0) + 2 * channel);
        };
    }

    private static long product(long[] shape) {
        long p = 1;
        for (long d : shape) {
            p = Math.multiplyExact(p, d);
        }
        return p;
    }
}
