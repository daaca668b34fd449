package org.convbn.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.convbn.core.RetainedBytes;
import org.convbn.nd4j.Optimizer;
import org.convbn.nd4j.RetainedOutput;
import org.convbn.testkit.conformance.RelativeError;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.learning.config.Nesterovs;

/**
 * Two networks built alike, one in EVAL and one in TUNE, stepped side by side with SGD + Nesterov momentum: after each
 * forward the logits agree and TUNE holds exactly every block's output less than EVAL; the gradients agree; after
 * each backward TUNE holds nothing.
 */
final class EvalTuneSteps {
    /** Gradient tensors below this magnitude compare in absolute terms (see {@link RelativeError}). */
    static final double GRADIENT_FLOOR = 1e-3;

    private EvalTuneSteps() {}

    /**
     * @param eval modified: stepped
     * @param tune modified: stepped
     * @param x the input of every step
     * @param labels the labels of every step
     * @param steps how many steps
     * @param tolerance relative error allowed between the two networks' logits and gradients
     */
    static void check(Network eval, Network tune, INDArray x, int[] labels, int steps, double tolerance) {
        Optimizer sgdE = new Optimizer(new Nesterovs(0.01, 0.9));
        Optimizer sgdT = new Optimizer(new Nesterovs(0.01, 0.9));
        for (int step = 0; step < steps; step++) {
            INDArray le = eval.forward(x);
            INDArray lt = tune.forward(x);
            assertTrue(RelativeError.of(flat(le), flat(lt), 0) <= tolerance);
            long blockOutputs = 0;
            for (NamedBlock b : eval.blocks()) {
                blockOutputs += RetainedOutput.bytes(b.block());
            }
            RetainedBytes re = eval.retainedBytes();
            RetainedBytes rt = tune.retainedBytes();
            assertEquals(rt.activationBytes() + blockOutputs, re.activationBytes());
            Map<String, INDArray> ge =
                    eval.backward(SoftmaxCrossEntropy.of(le, labels).gradLogits());
            Map<String, INDArray> gt =
                    tune.backward(SoftmaxCrossEntropy.of(lt, labels).gradLogits());
            assertEquals(ge.keySet(), gt.keySet());
            assertEquals(eval.parameters().keySet(), ge.keySet());
            ge.forEach(
                    (k, v) -> assertTrue(RelativeError.of(flat(v), flat(gt.get(k)), GRADIENT_FLOOR) <= tolerance, k));
            sgdE.step(eval.parameters(), ge);
            sgdT.step(tune.parameters(), gt);
            assertEquals(RetainedBytes.NONE, tune.retainedBytes());
        }
    }

    static double[] flat(INDArray a) {
        return a.reshape(a.length()).toDoubleVector();
    }
}
