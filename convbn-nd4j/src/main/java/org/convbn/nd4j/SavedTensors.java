package org.convbn.nd4j;

import java.util.List;

import org.convbn.core.RetainedBytes;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * What a forward keeps for its backward, one record per mode, exactly as in the mode table of
 * {@link org.convbn.core.Mode}. Holding these and nothing else is what makes the retained-byte accounting exact.
 */
sealed interface SavedTensors {

    /** @return the forward's input */
    INDArray input();

    /** @return the saved tensors shaped like a feature map */
    List<INDArray> activations();

    /** @return the saved tensors shaped like a weight or a per-channel vector */
    List<INDArray> weightSized();

    /**
     * Frees the tensors the forward made for itself (Y, the TUNE fold), when they are dropped without a backward.
     * The input belongs to the caller and the batch statistics are kept for replays, so neither is freed.
     */
    default void releaseOwned() {
        if (this instanceof Train t) {
            NativeMemory.release(t.convOutput());
        } else if (this instanceof Eval e) {
            NativeMemory.release(e.convOutput());
        } else if (this instanceof Tune t) {
            NativeMemory.release(t.folded().weight(), t.folded().bias(), t.folded().scale());
        }
    }

    /** @return the bytes held, activation-sized and weight-sized */
    default RetainedBytes bytes() {
        return new RetainedBytes(activations().stream().mapToLong(Tensors::bytes).sum(),
                weightSized().stream().mapToLong(Tensors::bytes).sum());
    }

    /** TRAIN: X, Y = conv(X) + b, and the batch mean and biased variance of Y. */
    record Train(INDArray input, INDArray convOutput, INDArray batchMean, INDArray batchVar) implements SavedTensors {
        @Override
        public List<INDArray> activations() {
            return List.of(input, convOutput);
        }

        @Override
        public List<INDArray> weightSized() {
            return List.of(batchMean, batchVar);
        }
    }

    /** EVAL: X and Y = conv(X) + b. */
    record Eval(INDArray input, INDArray convOutput) implements SavedTensors {
        @Override
        public List<INDArray> activations() {
            return List.of(input, convOutput);
        }

        @Override
        public List<INDArray> weightSized() {
            return List.of();
        }
    }

    /** TUNE: X and the fold W' (null when recomputed in the backward), b', s of this forward. */
    record Tune(INDArray input, FoldedParameters folded) implements SavedTensors {
        @Override
        public List<INDArray> activations() {
            return List.of(input);
        }

        @Override
        public List<INDArray> weightSized() {
            return folded.weight() == null ? List.of(folded.bias(), folded.scale())
                    : List.of(folded.weight(), folded.bias(), folded.scale());
        }
    }

    /** DEPLOY: X only; W' and b' are the parameters themselves. */
    record Deploy(INDArray input) implements SavedTensors {
        @Override
        public List<INDArray> activations() {
            return List.of(input);
        }

        @Override
        public List<INDArray> weightSized() {
            return List.of();
        }
    }
}
