package org.convbn.net;

import net.jcip.annotations.NotThreadSafe;
import net.jcip.annotations.ThreadSafe;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

/** Mean softmax cross-entropy over a batch, with its gradient. */
@ThreadSafe
public final class SoftmaxCrossEntropy {
    private SoftmaxCrossEntropy() {}

    /**
     * The loss and dL/dlogits.
     *
     * @param loss {@code -mean_i log softmax(logits_i)[label_i]}
     * @param gradLogits {@code (softmax(logits) - onehot(labels)) / N}
     */
    @NotThreadSafe
    public record Result(double loss, INDArray gradLogits) {}

    /**
     * @param logits {@code [N, classes]}, not modified
     * @param labels N class indices in [0, classes)
     * @return the loss and a new gradient array
     * @throws IllegalArgumentException if the label count or a label is out of range
     */
    public static Result of(INDArray logits, int[] labels) {
        long n = logits.size(0);
        long classes = logits.size(1);
        if (labels.length != n) {
            throw new IllegalArgumentException("labels: expected " + n + " labels, got " + labels.length);
        }
        INDArray p = Transforms.softmax(logits, true);
        double loss = 0;
        for (int i = 0; i < n; i++) {
            if (labels[i] < 0 || labels[i] >= classes) {
                throw new IllegalArgumentException(
                        "labels[" + i + "]: expected a class in [0, " + classes + "), got " + labels[i]);
            }
            double pi = p.getDouble(i, labels[i]);
            loss -= Math.log(Math.max(pi, Double.MIN_NORMAL));
            p.putScalar(new long[] {i, labels[i]}, pi - 1);
        }
        return new Result(loss / n, p.divi(n));
    }
}
