package org.convbn.nd4j;

import java.util.Locale;
import java.util.Optional;
import net.jcip.annotations.Immutable;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The range of the fold scale {@code s = gamma / sqrt(var + eps)} of one block, and what it means for training
 * in DEPLOY.
 *
 * <p>Why DEPLOY is unstable to fine-tune: {@code W' = s W}, so {@code dL/dW' = (dL/dW) / s}. An SGD step of
 * size lr moves W' by {@code -lr s^2 dL/dW'} in EVAL/TUNE but by {@code -lr dL/dW'} in DEPLOY: DEPLOY is EVAL
 * with a per-channel learning rate scaled by {@code 1 / s^2}, which varies across the channels of a pretrained
 * network by orders of magnitude. {@link #learningRateSpread()} is that variation.
 *
 * @param minScale smallest s
 * @param maxScale largest s
 * @param minAbsScale smallest |s|
 * @param maxAbsScale largest |s|
 * @param minAbsChannel the channel of the smallest |s|
 * @param maxAbsChannel the channel of the largest |s|
 */
@Immutable
public record FoldDiagnostics(
        double minScale,
        double maxScale,
        double minAbsScale,
        double maxAbsScale,
        int minAbsChannel,
        int maxAbsChannel) {
    /**
     * Spread of effective per-channel learning rates above which training in DEPLOY is flagged: one order of
     * magnitude between the fastest and the slowest channel.
     */
    public static final double DEFAULT_SPREAD_LIMIT = 10;

    /**
     * @param scale s {@code [O]}, not modified
     * @return its range
     */
    public static FoldDiagnostics of(INDArray scale) {
        double[] s = scale.toDoubleVector();
        double min = Double.POSITIVE_INFINITY;
        double max = Double.NEGATIVE_INFINITY;
        int minAbsAt = 0;
        int maxAbsAt = 0;
        for (int c = 0; c < s.length; c++) {
            min = Math.min(min, s[c]);
            max = Math.max(max, s[c]);
            if (Math.abs(s[c]) < Math.abs(s[minAbsAt])) {
                minAbsAt = c;
            }
            if (Math.abs(s[c]) > Math.abs(s[maxAbsAt])) {
                maxAbsAt = c;
            }
        }
        return new FoldDiagnostics(min, max, Math.abs(s[minAbsAt]), Math.abs(s[maxAbsAt]), minAbsAt, maxAbsAt);
    }

    /**
     * @return {@code (max|s| / min|s|)^2}: how many times faster DEPLOY trains its fastest channel than its slowest,
     *         relative to EVAL/TUNE (infinite when some s is 0)
     */
    public double learningRateSpread() {
        double ratio = maxAbsScale / minAbsScale;
        return ratio * ratio;
    }

    /**
     * @param spreadLimit the largest acceptable {@link #learningRateSpread()}
     * @return a warning to show someone about to train this block in DEPLOY, or empty when the spread is within
     *         the limit
     */
    public Optional<String> deployTrainingWarning(double spreadLimit) {
        double spread = learningRateSpread();
        if (spread <= spreadLimit) {
            return Optional.empty();
        }
        return Optional.of(String.format(
                Locale.ROOT,
                "training in DEPLOY rescales the learning rate of each output channel by 1/s^2: here s spans "
                        + "[%.3g, %.3g] (|s| from %.3g at channel %d to %.3g at channel %d), a %.3g-fold spread of "
                        + "effective learning rates; fine-tune in TUNE mode for EVAL's gradients at DEPLOY's cost",
                minScale,
                maxScale,
                minAbsScale,
                minAbsChannel,
                maxAbsScale,
                maxAbsChannel,
                spread));
    }
}
