package org.convbn.bench;

import java.util.List;
import java.util.Map;

/**
 * What one mode measured, as written to results.json (snake_case names).
 *
 * @param mode TRAIN, EVAL, DEPLOY or TUNE
 * @param stepMsMedian median step time over the measured steps, milliseconds
 * @param stepMsMin fastest measured step
 * @param stepMsMax slowest measured step
 * @param peakBytes largest RSS rise above the pre-step RSS over the measured steps (-1 where /proc is missing)
 * @param retainedBytes exact bytes the network kept between forward and backward
 * @param retainedActivationBytes the activation-sized part of {@code retainedBytes}
 * @param baselineRssBytes RSS before the last measured step (network, optimiser state, input)
 * @param stepsMs every measured step's time
 * @param peaksBytes every measured step's peak
 * @param finalLoss loss of the last step
 * @param backend the ND4J backend and native build the measuring JVM loaded
 * @param threads ND4J's maximum thread count in the measuring JVM
 * @param roundMediansMs in a report of several rounds, each round's median step time (null for one run)
 * @param roundPeaksBytes in a report of several rounds, each round's peak (null for one run)
 * @param implementations per kind of oneDNN primitive convbn's kernels ran (e.g. "convolution forward_training"), the
 *                        implementations oneDNN chose (e.g. "jit:avx2"); empty for kernels that report none, null for
 *                        peers
 */
public record ModeResult(
        String mode,
        double stepMsMedian,
        double stepMsMin,
        double stepMsMax,
        long peakBytes,
        long retainedBytes,
        long retainedActivationBytes,
        long baselineRssBytes,
        List<Double> stepsMs,
        List<Long> peaksBytes,
        double finalLoss,
        String backend,
        int threads,
        List<Double> roundMediansMs,
        List<Long> roundPeaksBytes,
        Map<String, List<String>> implementations) {

    /** One run's result (no rounds). */
    public ModeResult(
            String mode,
            double stepMsMedian,
            double stepMsMin,
            double stepMsMax,
            long peakBytes,
            long retainedBytes,
            long retainedActivationBytes,
            long baselineRssBytes,
            List<Double> stepsMs,
            List<Long> peaksBytes,
            double finalLoss,
            String backend,
            int threads,
            Map<String, List<String>> implementations) {
        this(
                mode,
                stepMsMedian,
                stepMsMin,
                stepMsMax,
                peakBytes,
                retainedBytes,
                retainedActivationBytes,
                baselineRssBytes,
                stepsMs,
                peaksBytes,
                finalLoss,
                backend,
                threads,
                null,
                null,
                implementations);
    }
}
