package org.convbn.bench;

import java.util.List;
import java.util.Map;

/** One measured training step of some network: what {@code measure} times and samples memory around. */
public interface BenchStep {

    /** Runs one step. @return the loss */
    double run();

    /** @return the exact bytes kept between forward and backward in the last step, or -1 when not tracked */
    long retainedBytes();

    /** @return the activation-sized part of {@link #retainedBytes()}, or -1 when not tracked */
    long retainedActivationBytes();

    /**
     * @return native memory the step's owner holds between steps for the next step's use (a network's arena), which is
     *         resident before a step starts and therefore part of the step's footprint; 0 when nothing is held
     */
    default long heldBetweenStepsBytes() {
        return 0;
    }

    /**
     * @return the kernels the step computes on (e.g. "onednn (oneDNN 2.5.2, isa avx2, layout BLOCKED8)"), or "-" when
     *         not a convbn network
     */
    default String kernels() {
        return "-";
    }

    /** @return per kind of primitive, the implementations the kernels ran (see {@code Kernels.implementations}) */
    default Map<String, List<String>> implementations() {
        return Map.of();
    }
}
