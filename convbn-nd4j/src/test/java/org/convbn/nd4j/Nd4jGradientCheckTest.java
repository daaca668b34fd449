package org.convbn.nd4j;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.EnumMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;
import java.util.stream.Stream;
import org.convbn.core.Mode;
import org.convbn.testkit.conformance.ConfigGrid;
import org.convbn.testkit.conformance.FiniteDifference;
import org.convbn.testkit.conformance.RelativeError;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The ND4J block's own backward against float64 central differences of its own forward, in every mode, on the
 * covering grid (each case costs hundreds of forwards). For dX, W, b, gamma, beta (and W', b' in DEPLOY).
 */
class Nd4jGradientCheckTest {
    /** Central-difference step: truncation ~h^2 balances rounding ~1e-16*|L|/h. */
    static final double FD_STEP = 1e-5;
    /** Required agreement, float64. */
    static final double MAX_RELATIVE_ERROR = 1e-6;
    /** Tensors whose largest value is below this compare in absolute terms (TRAIN's conv bias gradient is 0). */
    static final double GRADIENT_FLOOR = 0.1;
    /** Input elements checked per case: a random sample keeps the test fast; every weight element is checked. */
    static final int INPUT_SAMPLES = 48;

    private static final Map<Mode, Double> WORST = new EnumMap<>(Mode.class);

    static Stream<ConfigGrid.Case> grid() {
        return ConfigGrid.covering().stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("grid")
    void everyModeMatchesFiniteDifferences(ConfigGrid.Case grid) {
        checkEveryMode(grid);
    }

    /**
     * A block of the grid case's configuration, float64, against central differences in every mode.
     *
     * @return the worst relative error per mode
     */
    static Map<Mode, Double> checkEveryMode(ConfigGrid.Case grid) {
        Map<Mode, Double> worst = new EnumMap<>(Mode.class);
        for (Mode mode : Mode.values()) {
            Fixtures.Case c = Fixtures.random(grid.config(), grid.inputShape(), DataType.DOUBLE, 300);
            ConvBNBlock block = ConvBNBlock.of(c.config(), c.nd4j(), mode);
            // TRAIN's forward moves the running statistics; the loss does not depend on them, but keep them fixed
            // so that every evaluation sees the same state.
            ConvBNParameters snapshot = mode == Mode.DEPLOY ? null : c.nd4j().copy();
            block.forward(c.xNd4j());
            BlockGradients analytic = block.backward(c.gNd4j());
            DoubleSupplier loss = () -> {
                double l = block.forward(c.xNd4j()).mul(c.gNd4j()).sumNumber().doubleValue();
                block.clearSaved();
                if (snapshot != null) {
                    c.nd4j().runningMean().assign(snapshot.runningMean());
                    c.nd4j().runningVar().assign(snapshot.runningVar());
                }
                return l;
            };
            worst.merge(
                    mode,
                    check(
                            mode,
                            grid,
                            "input",
                            analytic.input(),
                            c.xNd4j(),
                            loss,
                            sample(c.xNd4j().length())),
                    Math::max);
            for (Map.Entry<String, INDArray> p : block.parameters().entrySet()) {
                worst.merge(
                        mode,
                        check(
                                mode,
                                grid,
                                p.getKey(),
                                analytic.parameter(p.getKey()),
                                p.getValue(),
                                loss,
                                FiniteDifference.all((int) p.getValue().length())),
                        Math::max);
            }
        }
        return worst;
    }

    @AfterAll
    static void report() {
        System.out.println("ND4J vs finite differences (float64), worst relative error per mode: " + WORST);
    }

    private static int[] sample(long n) {
        SplittableRandom rng = new SplittableRandom(n);
        return rng.ints(Math.min(INPUT_SAMPLES, n), 0, (int) n).toArray();
    }

    private static double check(
            Mode mode,
            ConfigGrid.Case grid,
            String name,
            INDArray analytic,
            INDArray wrt,
            DoubleSupplier loss,
            int[] indices) {
        INDArray flat = wrt.reshape(wrt.length()); // a view: writes reach the block's array
        double[] numeric = FiniteDifference.gradient(indices, flat::getDouble, flat::putScalar, loss, FD_STEP);
        double[] all = Fixtures.values(analytic);
        double[] picked = new double[indices.length];
        for (int k = 0; k < indices.length; k++) {
            picked[k] = all[indices[k]];
        }
        double err = RelativeError.of(picked, numeric, GRADIENT_FLOOR);
        synchronized (WORST) {
            WORST.merge(mode, err, Math::max);
        }
        assertTrue(err <= MAX_RELATIVE_ERROR, () -> mode + " " + grid + " d" + name + ": relative error " + err);
        return err;
    }
}
