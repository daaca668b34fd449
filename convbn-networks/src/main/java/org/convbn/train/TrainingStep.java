package org.convbn.train;

import net.jcip.annotations.Immutable;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.RetainedBytes;
import org.convbn.nd4j.Optimizer;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.net.Network;
import org.convbn.net.SoftmaxCrossEntropy;
import org.nd4j.linalg.api.ndarray.INDArray;

/** One training step of a {@link Network}: forward, softmax cross-entropy, backward with the update inside it. */
@NotThreadSafe
public final class TrainingStep {
    private TrainingStep() {}

    /**
     * What a step gives.
     *
     * @param loss the loss before the update
     * @param retained what the network held between its forward and its backward (exact)
     */
    @Immutable
    public record Result(double loss, RetainedBytes retained) {}

    /**
     * Forward, softmax cross-entropy, backward with the optimiser applied to each block's parameters as soon as
     * their gradients exist (each gradient is freed at once), then the schedules advance.
     *
     * @param net modified: its trainable parameters are updated
     * @param x input, not modified
     * @param labels class per sample
     * @param optimizer the update rule (keeps its state across steps)
     * @return the loss and the bytes held for backward
     */
    public static Result run(Network net, INDArray x, int[] labels, Optimizer optimizer) {
        INDArray logits = net.forward(x);
        RetainedBytes retained = net.retainedBytes();
        SoftmaxCrossEntropy.Result r = SoftmaxCrossEntropy.of(logits, labels);
        net.arena().release(logits);
        net.backward(r.gradLogits(), (name, parameter, gradient) -> {
            optimizer.apply(name, parameter, gradient);
            net.arena().release(gradient);
        });
        Arena.direct().release(r.gradLogits());
        optimizer.iterationDone();
        return new Result(r.loss(), retained);
    }
}
