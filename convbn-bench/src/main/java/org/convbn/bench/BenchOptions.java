package org.convbn.bench;

/** Checks of the command-line numbers shared by the commands. */
final class BenchOptions {
    private BenchOptions() {
    }

    /** @throws IllegalArgumentException naming the option out of range */
    static void validate(int batch, int resolution, int steps, int warmup) {
        if (batch < 1) {
            throw new IllegalArgumentException("--batch: expected >= 1, got " + batch);
        }
        if (resolution < 32) {
            throw new IllegalArgumentException("--resolution: expected >= 32 (five stride-2 stages), got " + resolution);
        }
        if (steps < 1) {
            throw new IllegalArgumentException("--steps: expected >= 1, got " + steps);
        }
        if (warmup < 0) {
            throw new IllegalArgumentException("--warmup: expected >= 0, got " + warmup);
        }
    }
}
