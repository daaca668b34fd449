package org.convbn.nd4j;

import org.convbn.core.RetainedBytes;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * What a forward keeps for its backward, one record per mode, exactly as in the mode table of
 * {@link org.convbn.core.Mode}. Holding these and nothing else is what makes the retained-byte accounting exact.
 */
sealed interface SavedTensors {

    /** @return the bytes held, activation-sized and weight-sized */
    RetainedBytes bytes();

    /** @return the forward's input */
    INDArray input();

    /** TRAIN: X, Y = conv(X) + b, and the batch mean and biased variance of Y. */
    record Train(INDArray input, INDArray convOutput, INDArray batchMean, INDArray batchVar) implements SavedTensors {
        @Override
        public RetainedBytes bytes() {
            return new RetainedBytes(Tensors.bytes(input) + Tensors.bytes(convOutput),
                    Tensors.bytes(batchMean) + Tensors.bytes(batchVar));
        }
    }

    /** EVAL: X and Y = conv(X) + b. */
    record Eval(INDArray input, INDArray convOutput) implements SavedTensors {
        @Override
        public RetainedBytes bytes() {
            return new RetainedBytes(Tensors.bytes(input) + Tensors.bytes(convOutput), 0);
        }
    }

    /** TUNE: X and the weight-sized fold W', b', s of this forward. */
    record Tune(INDArray input, FoldedParameters folded) implements SavedTensors {
        @Override
        public RetainedBytes bytes() {
            return new RetainedBytes(Tensors.bytes(input), Tensors.bytes(folded.weight())
                    + Tensors.bytes(folded.bias()) + Tensors.bytes(folded.scale()));
        }
    }

    /** DEPLOY: X only; W' and b' are the parameters themselves. */
    record Deploy(INDArray input) implements SavedTensors {
        @Override
        public RetainedBytes bytes() {
            return new RetainedBytes(Tensors.bytes(input), 0);
        }
    }
}
