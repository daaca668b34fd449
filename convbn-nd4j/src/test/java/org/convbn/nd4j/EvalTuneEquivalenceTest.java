package org.convbn.nd4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.stream.Stream;
import org.convbn.core.Mode;
import org.convbn.core.TuneFold;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.Nd4jKernels;
import org.convbn.testkit.conformance.ConfigGrid;
import org.convbn.testkit.conformance.RelativeError;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.learning.config.Nesterovs;
import org.nd4j.linalg.learning.regularization.L2Regularization;

/** EVAL and TUNE are the same function with the same gradients; DEPLOY has EVAL's forward. */
public class EvalTuneEquivalenceTest {
    /**
     * float64: TUNE sums conv(X, sW) where EVAL sums s*conv(X, W), and gets dgamma from dW'.W instead of g.Y;
     * the same quantities in other orders, so a few ulps of order-one values.
     */
    public static final double FLOAT64_TOLERANCE = 1e-12;
    /** Compare near-zero tensors in absolute terms below this magnitude. */
    static final double FLOOR = 0.1;

    static Stream<ConfigGrid.Case> grid() {
        return ConfigGrid.full().stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("grid")
    void evalAndTuneAgreeAndDeployForwardsTheSame(ConfigGrid.Case grid) {
        check(grid, DataType.DOUBLE, new Nd4jKernels(DataType.DOUBLE, Arena.direct()), FLOAT64_TOLERANCE);
    }

    /**
     * EVAL and TUNE (keeping and recomputing the fold) on one grid case and the given kernels: same output and
     * gradients within {@code tol}, TUNE's two fold variants bit-identical, DEPLOY's output EVAL's.
     */
    public static void check(ConfigGrid.Case grid, DataType type, Kernels kernels, double tol) {
        Fixtures.Case c = Fixtures.random(grid.config(), grid.inputShape(), type, 400);
        ConvBNBlock eval = ConvBNBlock.of(c.config(), c.nd4j().copy(), Mode.EVAL, kernels);
        ConvBNBlock tune = ConvBNBlock.of(c.config(), c.nd4j().copy(), Mode.TUNE, kernels);
        ConvBNBlock recompute = ConvBNBlock.of(
                c.config().withTuneFold(TuneFold.RECOMPUTE), c.nd4j().copy(), Mode.TUNE, kernels);
        ConvBNBlock deploy = ConvBNBlock.of(c.config(), c.nd4j().copy(), Mode.DEPLOY, kernels);
        INDArray zEval = eval.forward(c.xNd4j());
        INDArray zTune = tune.forward(c.xNd4j());
        close("output", zEval, zTune, tol);
        assertArrayEquals(
                Fixtures.values(zTune),
                Fixtures.values(recompute.forward(c.xNd4j())),
                "recomputing the fold changes nothing in the forward");
        close("deploy output", zEval, deploy.forward(c.xNd4j()), tol);
        BlockGradients gTune = tune.backward(c.gNd4j());
        sameGradients(eval.backward(c.gNd4j()), gTune, tol);
        BlockGradients gRecompute = recompute.backward(c.gNd4j());
        assertArrayEquals(Fixtures.values(gTune.input()), Fixtures.values(gRecompute.input()), "bit-identical dX");
        gTune.parameters()
                .forEach((k, v) -> assertArrayEquals(
                        Fixtures.values(v), Fixtures.values(gRecompute.parameter(k)), "bit-identical d" + k));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("grid")
    void evalAndTuneStillAgreeAfterSgdStepsWithMomentum(ConfigGrid.Case grid) {
        Fixtures.Case c = Fixtures.random(grid.config(), grid.inputShape(), DataType.DOUBLE, 500);
        ConvBNBlock eval = ConvBNBlock.of(c.config(), c.nd4j().copy(), Mode.EVAL);
        ConvBNBlock tune = ConvBNBlock.of(c.config(), c.nd4j().copy(), Mode.TUNE);
        Optimizer evalSgd = new Optimizer(new Nesterovs(0.05, 0.9), new L2Regularization(1e-4));
        Optimizer tuneSgd = new Optimizer(new Nesterovs(0.05, 0.9), new L2Regularization(1e-4));
        for (int step = 0; step < 3; step++) {
            close("output step " + step, eval.forward(c.xNd4j()), tune.forward(c.xNd4j()), FLOAT64_TOLERANCE);
            BlockGradients ge = eval.backward(c.gNd4j());
            BlockGradients gt = tune.backward(c.gNd4j());
            sameGradients(ge, gt, FLOAT64_TOLERANCE);
            evalSgd.step(eval.parameters(), ge.parameters());
            tuneSgd.step(tune.parameters(), gt.parameters());
        }
        eval.parameters()
                .forEach((name, p) ->
                        close("parameter " + name, p, tune.parameters().get(name), FLOAT64_TOLERANCE));
    }

    private static void sameGradients(BlockGradients a, BlockGradients b, double tol) {
        close("dX", a.input(), b.input(), tol);
        assertEquals(a.parameters().keySet(), b.parameters().keySet());
        for (Map.Entry<String, INDArray> e : a.parameters().entrySet()) {
            close("d" + e.getKey(), e.getValue(), b.parameter(e.getKey()), tol);
        }
    }

    private static void close(String what, INDArray want, INDArray got, double tol) {
        double err = RelativeError.of(Fixtures.values(want), Fixtures.values(got), FLOOR);
        assertTrue(err <= tol, () -> what + ": relative error " + err + " > " + tol);
    }
}
