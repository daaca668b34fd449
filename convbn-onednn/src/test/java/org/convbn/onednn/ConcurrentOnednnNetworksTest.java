package org.convbn.onednn;

import org.convbn.core.Mode;
import org.convbn.net.ConcurrentTraining;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Two networks on oneDNN's kernels trained in two threads at once give what they give one after the other: each
 * network's kernels have their own oneDNN stream, primitives and scratch memory; the engine is shared (oneDNN
 * engines are thread-safe).
 */
class ConcurrentOnednnNetworksTest {
    /**
     * float32: oneDNN splits its reductions (weight gradients, batch statistics) over the OpenMP threads a call gets,
     * which depends on what else runs; rounding (6e-8) through 20 and 49 blocks and two steps. A network reading
     * another's buffers or stream is O(1). Measured here: 0 (the same bits).
     */
    static final double TOLERANCE = 1e-4;

    @Test
    void aResNetAndAnEfficientNetInTwoThreadsMatchSequentialRuns() {
        ConcurrentTraining.assertConcurrentMatchesSequential(
                TOLERANCE,
                ConcurrentTraining.job(
                        ConcurrentTraining.resnet18(DataType.FLOAT, Mode.TUNE, 1), 64, DataType.FLOAT, 11),
                ConcurrentTraining.job(
                        ConcurrentTraining.efficientNetB0(DataType.FLOAT, Mode.EVAL, 2), 64, DataType.FLOAT, 12));
    }
}
