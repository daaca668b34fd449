package org.convbn.bench;

/** One measured training step of some network: what {@code measure} times and samples memory around. */
public interface BenchStep {

    /** Runs one step. @return the loss */
    double run();

    /** @return the exact bytes kept between forward and backward in the last step, or -1 when not tracked */
    long retainedBytes();

    /** @return the activation-sized part of {@link #retainedBytes()}, or -1 when not tracked */
    long retainedActivationBytes();
}
