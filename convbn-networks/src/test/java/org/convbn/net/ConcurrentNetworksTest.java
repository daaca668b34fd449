package org.convbn.net;

import org.convbn.core.Mode;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Two networks trained in two threads at once give what they give one after the other (float64, ND4J's kernels):
 * networks share nothing but the process.
 */
class ConcurrentNetworksTest {
    /**
     * float64: libnd4j's ops split their reductions over the OpenMP threads they get, which depends on what else
     * runs; rounding (1.1e-16) through 20 blocks and two steps. A network reading another's buffers is O(1).
     * Measured here: 0 (the same bits).
     */
    static final double TOLERANCE = 1e-10;

    @Test
    void twoResNetsInTwoThreadsMatchSequentialRuns() {
        ConcurrentTraining.assertConcurrentMatchesSequential(
                TOLERANCE,
                ConcurrentTraining.job(
                        ConcurrentTraining.resnet18(DataType.DOUBLE, Mode.TUNE, 1), 32, DataType.DOUBLE, 11),
                ConcurrentTraining.job(
                        ConcurrentTraining.resnet18(DataType.DOUBLE, Mode.TRAIN, 2), 32, DataType.DOUBLE, 12));
    }
}
