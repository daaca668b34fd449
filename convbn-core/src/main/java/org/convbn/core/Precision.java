package org.convbn.core;

/**
 * The width feature maps are stored in, against the parameters' data type.
 *
 * <p>In mixed precision, as {@code torch.autocast("cpu", dtype=torch.bfloat16)} runs a step: feature maps, their
 * gradients and the inputs and outputs of convolutions are bfloat16 (8 bits of mantissa, float32's exponent range);
 * parameters, their gradients, BN statistics, the fold ({@code s}, {@code b'} and {@code W' = s W}), the pooled
 * features, the classifier, the loss and the optimizer stay float32. Every dot product accumulates in float32 and is
 * rounded to bfloat16 once, when it is stored (round to nearest even), which is what oneDNN's bfloat16
 * convolutions do on CPUs with AVX-512 BF16.
 */
public enum Precision {
    /** Every tensor in the network's data type (float32 or float64). */
    FULL,
    /**
     * Mixed precision on native bfloat16 kernels (CPUs with AVX-512 BF16 or AMX): none of convbn's kernel sets computes
     * in bfloat16 yet, so a network asked for it refuses, naming the kernels and instruction set it found.
     */
    BF16_MIXED,
    /**
     * Mixed precision emulated on any CPU: feature maps are stored in bfloat16 (retained bytes and peak memory are
     * those of mixed precision, values are rounded exactly as there) and each kernel computes in float32 on a
     * float32 copy of its bfloat16 inputs. Slower than {@link #FULL}: every kernel converts its inputs and outputs.
     * For tests, memory and accuracy measurements, not for speed.
     */
    BF16_EMULATED;

    /** Bytes of a bfloat16 value. */
    public static final int BF16_BYTES = 2;

    /** @return whether feature maps are stored in bfloat16 */
    public boolean isBf16() {
        return this != FULL;
    }

    /**
     * @param dataTypeBytes the width of the parameters' data type (4 for float32, 8 for float64)
     * @return the width a feature map is stored in
     */
    public int featureMapBytes(int dataTypeBytes) {
        return isBf16() ? BF16_BYTES : dataTypeBytes;
    }
}
