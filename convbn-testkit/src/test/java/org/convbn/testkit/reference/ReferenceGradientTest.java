package org.convbn.testkit.reference;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.EnumMap;
import java.util.Map;
import java.util.function.DoubleSupplier;
import java.util.stream.Stream;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.Mode;
import org.convbn.core.ParameterNames;
import org.convbn.testkit.conformance.ConfigGrid;
import org.convbn.testkit.conformance.FiniteDifference;
import org.convbn.testkit.conformance.RandomCase;
import org.convbn.testkit.conformance.RelativeError;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The reference backward of every mode against float64 central differences, on the full grid. */
class ReferenceGradientTest {
    /** Central-difference step: truncation error ~h^2 (1e-10) balances rounding ~1e-16*|L|/h (~1e-9). */
    static final double FD_STEP = 1e-5;
    /** Required agreement of analytic and finite-difference gradients, float64. */
    static final double MAX_RELATIVE_ERROR = 1e-6;
    /**
     * Gradient tensors whose largest element is below this are compared in absolute terms. The grid's gradients
     * are of order 1-10; the conv bias gradient in TRAIN is zero in exact arithmetic (BN removes any per-channel
     * constant), so its finite-difference estimate is rounding noise of up to ~7e-8 at this step.
     */
    static final double GRADIENT_FLOOR = 0.1;

    private static final Map<Mode, Double> WORST = new EnumMap<>(Mode.class);

    static Stream<ConfigGrid.Case> grid() {
        return ConfigGrid.full().stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("grid")
    void unfoldedModesMatchFiniteDifferences(ConfigGrid.Case c) {
        for (Mode mode : new Mode[] {Mode.TRAIN, Mode.EVAL, Mode.TUNE}) {
            ReferenceParameters p = RandomCase.parameters(c.config(), 11);
            Tensor x = RandomCase.tensor(c.inputShape(), 12);
            Tensor g = RandomCase.tensor(c.config().conv().outputShape(c.inputShape()), 13);
            ReferenceConvBN.Gradients analytic = ReferenceConvBN.backward(c.config(), mode, p, x, g);
            DoubleSupplier loss =
                    () -> dot(ReferenceConvBN.forward(c.config(), mode, p, x).output(), g);
            check(mode, c, "input", analytic.input(), x, loss);
            check(
                    mode,
                    c,
                    ParameterNames.CONV_WEIGHT,
                    analytic.parameters().get(ParameterNames.CONV_WEIGHT),
                    p.weight(),
                    loss);
            if (p.bias() != null) {
                check(
                        mode,
                        c,
                        ParameterNames.CONV_BIAS,
                        analytic.parameters().get(ParameterNames.CONV_BIAS),
                        p.bias(),
                        loss);
            }
            if (p.gamma() != null) {
                check(
                        mode,
                        c,
                        ParameterNames.BN_WEIGHT,
                        analytic.parameters().get(ParameterNames.BN_WEIGHT),
                        p.gamma(),
                        loss);
                check(
                        mode,
                        c,
                        ParameterNames.BN_BIAS,
                        analytic.parameters().get(ParameterNames.BN_BIAS),
                        p.beta(),
                        loss);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("grid")
    void deployMatchesFiniteDifferences(ConfigGrid.Case c) {
        ConvBNConfig config = c.config();
        ReferenceConvBN.Folded folded = ReferenceConvBN.fold(config, RandomCase.parameters(config, 21));
        Tensor x = RandomCase.tensor(c.inputShape(), 22);
        Tensor g = RandomCase.tensor(config.conv().outputShape(c.inputShape()), 23);
        ReferenceConvBN.Gradients analytic = ReferenceConvBN.deployBackward(config.conv(), folded, x, g);
        DoubleSupplier loss = () -> dot(ReferenceConvBN.deployForward(config.conv(), folded, x), g);
        check(Mode.DEPLOY, c, "input", analytic.input(), x, loss);
        check(
                Mode.DEPLOY,
                c,
                ParameterNames.FOLDED_WEIGHT,
                analytic.parameters().get(ParameterNames.FOLDED_WEIGHT),
                folded.weight(),
                loss);
        check(
                Mode.DEPLOY,
                c,
                ParameterNames.FOLDED_BIAS,
                analytic.parameters().get(ParameterNames.FOLDED_BIAS),
                folded.bias(),
                loss);
    }

    @AfterAll
    static void report() {
        System.out.println("reference vs finite differences, worst relative error per mode: " + WORST);
    }

    private static void check(
            Mode mode, ConfigGrid.Case c, String name, Tensor analytic, Tensor wrt, DoubleSupplier loss) {
        double[] numeric = FiniteDifference.gradient(
                FiniteDifference.all(wrt.size()), i -> wrt.data()[i], (i, v) -> wrt.data()[i] = v, loss, FD_STEP);
        double err = RelativeError.of(analytic.data(), numeric, GRADIENT_FLOOR);
        synchronized (WORST) {
            WORST.merge(mode, err, Math::max);
        }
        assertTrue(
                err <= MAX_RELATIVE_ERROR,
                () -> mode + " " + c + " d" + name + ": relative error " + err + " > " + MAX_RELATIVE_ERROR);
    }

    static double dot(Tensor a, Tensor b) {
        double s = 0;
        for (int i = 0; i < a.size(); i++) {
            s += a.data()[i] * b.data()[i];
        }
        return s;
    }
}
