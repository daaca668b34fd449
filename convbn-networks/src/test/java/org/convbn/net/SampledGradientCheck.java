package org.convbn.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;
import org.convbn.core.Mode;
import org.convbn.testkit.conformance.FiniteDifference;
import org.nd4j.linalg.api.ndarray.INDArray;

/** A network's backward against central differences of its loss, on a few random entries of named tensors. */
final class SampledGradientCheck {
    /** Gradients below this magnitude compare in absolute terms (relative error over max(FLOOR, |numeric|)). */
    static final double FLOOR = 1e-3;

    private SampledGradientCheck() {}

    /**
     * @param net read; each sampled parameter entry is moved and put back
     * @param grads the backward's gradients by name
     * @param tensors tensor names, or module names whose first tensor is checked; absent ones are allowed in DEPLOY
     *                only (the BN tensors are folded away)
     * @param perTensor entries sampled per tensor
     * @param step the central difference's step
     * @param tolerance relative error allowed
     * @param loss the loss of a forward at the current parameters (which must leave no pending forward)
     */
    static void check(
            Network net,
            Map<String, INDArray> grads,
            String[] tensors,
            int perTensor,
            double step,
            double tolerance,
            DoubleSupplier loss) {
        SplittableRandom rng = new SplittableRandom(2);
        for (String name : tensors) {
            String key = net.parameters().keySet().stream()
                    .filter(k -> k.equals(name) || k.startsWith(name + "."))
                    .findFirst()
                    .orElse(null);
            if (key == null) {
                assertEquals(Mode.DEPLOY, net.mode(), name + " is missing outside DEPLOY");
                continue;
            }
            INDArray p = net.parameters().get(key).reshape(-1);
            int[] indices = rng.ints(perTensor, 0, (int) p.length()).toArray();
            double[] numeric = FiniteDifference.gradient(indices, p::getDouble, p::putScalar, loss, step);
            for (int k = 0; k < indices.length; k++) {
                double analytic = grads.get(key).getDouble(indices[k]);
                double err = Math.abs(numeric[k] - analytic) / Math.max(FLOOR, Math.abs(numeric[k]));
                assertTrue(
                        err <= tolerance,
                        net.mode() + " " + key + "[" + indices[k] + "]: analytic " + analytic + ", numeric "
                                + numeric[k]);
            }
        }
    }
}
