package org.convbn.nd4j;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.SplittableRandom;
import org.convbn.testkit.conformance.RelativeError;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.learning.config.Nesterovs;
import org.nd4j.linalg.learning.config.Sgd;
import org.nd4j.linalg.learning.regularization.L2Regularization;
import org.nd4j.linalg.learning.regularization.Regularization;
import org.nd4j.linalg.learning.regularization.WeightDecay;

/**
 * ND4J's updaters and regularizations, as {@link Optimizer} applies them one parameter at a time, agree with the
 * textbook formulas (written here in plain double loops); shapes are checked.
 */
class OptimizerTest {
    /** float64: the formulas are rearranged (ND4J's Nesterov keeps -lr*buffer, PyTorch the buffer). */
    static final double FORMULA_TOLERANCE = 1e-12;

    static final int STEPS = 5;

    /** One parameter's reference optimiser: updates {@code p} in place from gradient {@code g} at step t (0-based). */
    private interface Reference {
        void step(double[] p, double[] g, int t);
    }

    @Test
    void sgdWithCoupledWeightDecayIsPyTorchsSgd() {
        double lr = 0.1;
        double wd = 0.01;
        agree(new Sgd(lr), new Regularization[] {new L2Regularization(wd)}, (p, g, t) -> {
            for (int i = 0; i < p.length; i++) {
                p[i] -= lr * (g[i] + wd * p[i]);
            }
        });
    }

    @Test
    void nesterovsWithCoupledWeightDecayIsPyTorchsNesterovSgd() {
        double lr = 0.05;
        double mu = 0.9;
        double wd = 1e-3;
        double[][] buffer = new double[1][];
        agree(new Nesterovs(lr, mu), new Regularization[] {new L2Regularization(wd)}, (p, g, t) -> {
            // torch.optim.SGD(momentum=mu, nesterov=True, weight_decay=wd)
            if (buffer[0] == null) {
                buffer[0] = new double[p.length];
            }
            for (int i = 0; i < p.length; i++) {
                double d = g[i] + wd * p[i];
                buffer[0][i] = t == 0 ? d : mu * buffer[0][i] + d;
                p[i] -= lr * (d + mu * buffer[0][i]);
            }
        });
    }

    @Test
    void adamWithDecoupledWeightDecayIsAdamW() {
        double lr = 1e-2;
        double b1 = 0.9;
        double b2 = 0.999;
        double eps = 1e-8;
        double wd = 0.05;
        double[][] moments = new double[2][];
        agree(new Adam(lr, b1, b2, eps), new Regularization[] {new WeightDecay(wd, true)}, (p, g, t) -> {
            // Adam as in Kingma and Ba's algorithm 1 with the bias corrections folded into the step size (ND4J's and
            // the paper's efficient form: eps is added to sqrt(v), not to sqrt(v-hat) as in PyTorch), then AdamW's
            // decoupled decay lr * wd * p.
            if (moments[0] == null) {
                moments[0] = new double[p.length];
                moments[1] = new double[p.length];
            }
            double step = lr * Math.sqrt(1 - Math.pow(b2, t + 1)) / (1 - Math.pow(b1, t + 1));
            for (int i = 0; i < p.length; i++) {
                moments[0][i] = b1 * moments[0][i] + (1 - b1) * g[i];
                moments[1][i] = b2 * moments[1][i] + (1 - b2) * g[i] * g[i];
                p[i] -= step * moments[0][i] / (Math.sqrt(moments[1][i]) + eps) + lr * wd * p[i];
            }
        });
    }

    private static void agree(IUpdater updater, Regularization[] regularization, Reference reference) {
        SplittableRandom rng = new SplittableRandom(3);
        double[] p = rng.doubles(12, -1, 1).toArray();
        INDArray param = Nd4j.createFromArray(p.clone()).reshape(3, 4);
        Optimizer optimizer = new Optimizer(updater, regularization);
        for (int t = 0; t < STEPS; t++) {
            double[] g = rng.doubles(12, -1, 1).toArray();
            reference.step(p, g, t);
            optimizer.apply("w", param, Nd4j.createFromArray(g).reshape(3, 4));
            optimizer.iterationDone();
            double err = RelativeError.of(p, param.reshape(12).toDoubleVector(), 0);
            int step = t;
            assertTrue(
                    err <= FORMULA_TOLERANCE,
                    () -> updater.getClass().getSimpleName() + " step " + step + ": relative error " + err);
        }
    }

    @Test
    void shapesAreChecked() {
        Optimizer o = new Optimizer(new Sgd(0.1));
        assertThrows(IllegalArgumentException.class, () -> o.apply("w", Nd4j.zeros(2, 3), Nd4j.zeros(3, 2)));
        assertThrows(IllegalArgumentException.class, () -> o.step(Map.of("w", Nd4j.zeros(2)), Map.of()));
        assertThrows(NullPointerException.class, () -> new Optimizer(null));
    }
}
