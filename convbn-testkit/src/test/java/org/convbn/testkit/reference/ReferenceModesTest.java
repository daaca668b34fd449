package org.convbn.testkit.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.stream.Stream;
import org.convbn.core.Mode;
import org.convbn.testkit.conformance.ConfigGrid;
import org.convbn.testkit.conformance.RandomCase;
import org.convbn.testkit.conformance.RelativeError;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Relations between the modes that hold by construction, checked on the oracle itself. */
class ReferenceModesTest {
    /** EVAL and TUNE/DEPLOY sum the same products in another order: float64 rounding of order-one values. */
    static final double REORDERING = 1e-13;
    /** Per-channel statistics summed in two orders, float64. */
    static final double STATISTICS = 1e-13;

    static Stream<ConfigGrid.Case> grid() {
        return ConfigGrid.full().stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("grid")
    void evalTuneAndDeployGiveTheSameOutput(ConfigGrid.Case c) {
        ReferenceParameters p = RandomCase.parameters(c.config(), 1);
        Tensor x = RandomCase.tensor(c.inputShape(), 2);
        Tensor eval = ReferenceConvBN.forward(c.config(), Mode.EVAL, p, x).output();
        Tensor tune = ReferenceConvBN.forward(c.config(), Mode.TUNE, p, x).output();
        Tensor deploy = ReferenceConvBN.deployForward(c.config().conv(), ReferenceConvBN.fold(c.config(), p), x);
        assertTrue(RelativeError.of(eval.data(), tune.data(), 0) <= REORDERING);
        assertTrue(RelativeError.of(eval.data(), deploy.data(), 0) <= REORDERING);
    }

    @Test
    void trainNormalisesEachChannelAndUpdatesRunningStatisticsTheUnbiasedWay() {
        ConfigGrid.Case c = ConfigGrid.full().get(0);
        ReferenceParameters p = RandomCase.parameters(c.config(), 3);
        Tensor x = RandomCase.tensor(c.inputShape(), 4);
        ReferenceConvBN.Forward f = ReferenceConvBN.forward(c.config(), Mode.TRAIN, p, x);
        Tensor y = ReferenceConv.forward(c.config().conv(), x, p.weight(), p.bias());
        int o = y.dim(1);
        int plane = y.dim(2) * y.dim(3);
        int n = y.dim(0) * plane;
        for (int ch = 0; ch < o; ch++) {
            double sum = 0;
            double sumZ = 0;
            double sumZ2 = 0;
            for (int b = 0; b < y.dim(0); b++) {
                for (int k = 0; k < plane; k++) {
                    sum += y.data()[(b * o + ch) * plane + k];
                    double z = (f.output().data()[(b * o + ch) * plane + k] - p.betaAt(ch)) / p.gammaAt(ch);
                    sumZ += z;
                    sumZ2 += z * z;
                }
            }
            double mean = sum / n;
            double ss = 0;
            for (int b = 0; b < y.dim(0); b++) {
                for (int k = 0; k < plane; k++) {
                    double d = y.data()[(b * o + ch) * plane + k] - mean;
                    ss += d * d;
                }
            }
            double eps = c.config().bn().eps();
            assertEquals(0, sumZ / n, STATISTICS);
            assertEquals(ss / n / (ss / n + eps), sumZ2 / n, STATISTICS);
            assertEquals(
                    0.9 * p.runningMean().data()[ch] + 0.1 * mean,
                    f.runningMean().data()[ch],
                    STATISTICS);
            assertEquals(
                    0.9 * p.runningVar().data()[ch] + 0.1 * ss / (n - 1),
                    f.runningVar().data()[ch],
                    STATISTICS);
        }
    }

    @Test
    void frozenModesLeaveRunningStatisticsAlone() {
        ConfigGrid.Case c = ConfigGrid.full().get(5);
        ReferenceParameters p = RandomCase.parameters(c.config(), 3);
        Tensor x = RandomCase.tensor(c.inputShape(), 4);
        for (Mode mode : new Mode[] {Mode.EVAL, Mode.TUNE}) {
            ReferenceConvBN.Forward f = ReferenceConvBN.forward(c.config(), mode, p, x);
            assertArrayEquals(p.runningMean().data(), f.runningMean().data(), 0);
            assertArrayEquals(p.runningVar().data(), f.runningVar().data(), 0);
        }
    }
}
