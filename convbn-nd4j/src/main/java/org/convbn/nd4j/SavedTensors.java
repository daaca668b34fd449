package org.convbn.nd4j;

import java.util.List;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.RetainedBytes;
import org.convbn.nd4j.kernel.Arena;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * What a forward keeps for its backward, one record per mode and TUNE variant, exactly as in the mode table of
 * {@link org.convbn.core.Mode}. Holding these and nothing else is what makes the retained-byte accounting exact.
 *
 * <p>Ownership: the input X stays its caller's (a block never frees its input); the tensors a forward made for its
 * backward (Y, the fold) belong to the record, which gives them back to their arena on {@link #close()}. TRAIN's
 * batch statistics belong to the block (a replay reuses them after the backward). The backward functions read a
 * record and free nothing; whoever holds it closes it.
 */
@NotThreadSafe
public sealed interface SavedTensors extends AutoCloseable {

    /** @return the forward's input */
    INDArray input();

    /** @return the saved tensors shaped like a feature map */
    List<INDArray> activations();

    /** @return the saved tensors shaped like a weight or a per-channel vector */
    List<INDArray> weightSized();

    /** Gives the tensors the forward made for this record back to their arena; the input stays the caller's. */
    @Override
    void close();

    /** @return the bytes held, activation-sized and weight-sized (physical sizes of the arrays) */
    default RetainedBytes bytes() {
        return new RetainedBytes(
                activations().stream().mapToLong(SavedTensors::bytes).sum(),
                weightSized().stream().mapToLong(SavedTensors::bytes).sum());
    }

    private static long bytes(INDArray a) {
        return a.length() * a.dataType().width();
    }

    /**
     * TRAIN: X, Y = conv(X) + b (owned), and the batch mean and biased variance of Y (the block's).
     */
    @NotThreadSafe
    record Train(INDArray input, INDArray convOutput, INDArray batchMean, INDArray batchVar, Arena arena)
            implements SavedTensors {
        @Override
        public List<INDArray> activations() {
            return List.of(input, convOutput);
        }

        @Override
        public List<INDArray> weightSized() {
            return List.of(batchMean, batchVar);
        }

        @Override
        public void close() {
            arena.release(convOutput);
        }
    }

    /** EVAL: X and Y = conv(X) + b (owned). */
    @NotThreadSafe
    record Eval(INDArray input, INDArray convOutput, Arena arena) implements SavedTensors {
        @Override
        public List<INDArray> activations() {
            return List.of(input, convOutput);
        }

        @Override
        public List<INDArray> weightSized() {
            return List.of();
        }

        @Override
        public void close() {
            arena.release(convOutput);
        }
    }

    /** TUNE keeping its fold ({@link org.convbn.core.TuneFold#KEEP}): X and this forward's W', b', s (owned). */
    @NotThreadSafe
    record TuneKept(INDArray input, FoldedParameters folded, Arena arena) implements SavedTensors {
        @Override
        public List<INDArray> activations() {
            return List.of(input);
        }

        @Override
        public List<INDArray> weightSized() {
            return List.of(folded.weight(), folded.bias(), folded.scale());
        }

        @Override
        public void close() {
            arena.release(folded.weight(), folded.bias(), folded.scale());
        }
    }

    /**
     * TUNE recomputing W' = s W in the backward ({@link org.convbn.core.TuneFold#RECOMPUTE}): X and this forward's
     * b' and s (owned).
     */
    @NotThreadSafe
    record TuneRecomputed(INDArray input, INDArray foldedBias, INDArray scale, Arena arena) implements SavedTensors {
        @Override
        public List<INDArray> activations() {
            return List.of(input);
        }

        @Override
        public List<INDArray> weightSized() {
            return List.of(foldedBias, scale);
        }

        @Override
        public void close() {
            arena.release(foldedBias, scale);
        }
    }

    /** DEPLOY: X only; W' and b' are the parameters themselves. */
    @NotThreadSafe
    record Deploy(INDArray input) implements SavedTensors {
        @Override
        public List<INDArray> activations() {
            return List.of(input);
        }

        @Override
        public List<INDArray> weightSized() {
            return List.of();
        }

        @Override
        public void close() {
            // nothing of its own
        }
    }
}
