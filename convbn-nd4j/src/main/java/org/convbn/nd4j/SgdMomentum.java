package org.convbn.nd4j;

import org.convbn.nd4j.kernel.Arena;
import java.util.IdentityHashMap;
import java.util.Map;

import org.convbn.core.Checks;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Stochastic gradient descent with momentum and weight decay, PyTorch's formulation:
 * {@code v <- momentum * v + (g + weightDecay * p)}, {@code p <- p - lr * v}. Velocities are kept per parameter
 * array (by identity), created at the first step that sees the array.
 */
public final class SgdMomentum {
    private final double learningRate;
    private final double momentum;
    private final double weightDecay;
    private final Map<INDArray, INDArray> velocity = new IdentityHashMap<>();

    /**
     * @param learningRate &gt; 0
     * @param momentum in [0, 1]
     * @param weightDecay &gt;= 0
     * @throws IllegalArgumentException naming the argument out of range
     */
    public SgdMomentum(double learningRate, double momentum, double weightDecay) {
        this.learningRate = Checks.positiveFinite("learningRate", learningRate);
        this.momentum = Checks.unitInterval("momentum", momentum);
        if (!(weightDecay >= 0) || Double.isInfinite(weightDecay)) {
            throw new IllegalArgumentException("weightDecay: expected a finite value >= 0, got " + weightDecay);
        }
        this.weightDecay = weightDecay;
    }

    /**
     * Updates every parameter in place with its gradient.
     *
     * @param parameters by name, modified in place (e.g. a block's {@code parameters()})
     * @param gradients by the same names, not modified
     * @throws IllegalArgumentException if a parameter has no gradient or a gradient has another shape
     */
    public void step(Map<String, INDArray> parameters, Map<String, INDArray> gradients) {
        for (Map.Entry<String, INDArray> e : parameters.entrySet()) {
            INDArray p = e.getValue();
            INDArray g = gradients.get(e.getKey());
            if (g == null) {
                throw new IllegalArgumentException("gradients: expected an entry for " + e.getKey() + ", got "
                        + gradients.keySet());
            }
            Tensors.requireShape("gradients[" + e.getKey() + "]", g, p.shape());
            INDArray v = velocity.get(p);
            if (v == null) {
                v = g.dup();
                velocity.put(p, v);
            } else {
                v.muli(momentum).addi(g);
            }
            if (weightDecay != 0) {
                INDArray decay = p.mul(weightDecay);
                v.addi(decay);
                Arena.direct().release(decay);
            }
            INDArray update = v.mul(learningRate);
            p.subi(update);
            Arena.direct().release(update);
        }
    }
}
