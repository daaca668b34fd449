package org.convbn.bench;

import java.util.List;

/**
 * The whole report, as written to results.json.
 *
 * @param model "resnet18" or "resnet50"
 * @param batch batch size
 * @param resolution input height and width
 * @param threads ND4J's maximum thread count in the measuring JVMs (the first mode's)
 * @param backend the ND4J backend and its build (e.g. "CPU nd4j-native avx2")
 * @param dataType FLOAT or DOUBLE (the parameters'), followed by the feature maps' precisions when bfloat16 ones were
 *                 measured, e.g. "FLOAT, feature maps FULL,BF16_EMULATED"
 * @param warmupSteps steps run before measuring
 * @param machine OS, architecture and processor count
 * @param modes one entry per measured mode (and per peer mode)
 * @param rounds how many times each mode was measured, interleaved with the others, each in fresh processes
 * @param ratios time and peak ratios between modes, from paired rounds
 */
public record Report(
        String model,
        int batch,
        int resolution,
        int threads,
        String backend,
        String dataType,
        int warmupSteps,
        String machine,
        List<ModeResult> modes,
        int rounds,
        List<Ratio> ratios) {

    /**
     * {@code a / b} per round (the two measured in the same round, so machine drift between rounds cancels), then
     * summarised over the rounds.
     *
     * @param name "A/B"
     * @param timeMedian median over rounds of the step-time ratio
     * @param timeMin smallest round's ratio
     * @param timeMax largest round's ratio
     * @param peakMedian median over rounds of the peak-memory ratio
     * @param peakMin smallest round's ratio
     * @param peakMax largest round's ratio
     * @param retained ratio of the bytes kept between forward and backward (deterministic), or NaN when untracked
     */
    public record Ratio(
            String name,
            double timeMedian,
            double timeMin,
            double timeMax,
            double peakMedian,
            double peakMin,
            double peakMax,
            double retained) {}
}
