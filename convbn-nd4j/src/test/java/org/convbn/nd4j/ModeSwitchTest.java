package org.convbn.nd4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;
import org.convbn.core.BatchNormConfig;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.convbn.core.Mode;
import org.convbn.core.ParameterNames;
import org.convbn.testkit.conformance.RelativeError;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Sgd;

/** Run-time mode switches, the fold round trip, and training in DEPLOY carried back. */
class ModeSwitchTest {
    /** float64 round trip W -> s*W -> W: a few ulps. */
    static final double ROUND_TRIP = 1e-14;
    /** Outputs computed through different but equivalent parameterisations, float64. */
    static final double EQUIVALENT = 1e-12;

    private static ConvBNConfig config(boolean bias, boolean affine) {
        return new ConvBNConfig(
                ConvConfig.builder(3, 6).kernel(3).padding(1).bias(bias).build(),
                new BatchNormConfig(6, 1e-3, 0.1, affine),
                true);
    }

    private static ConvBNBlock trained(ConvBNConfig config) {
        ConvBNBlock b = ConvBNBlock.initialized(config, DataType.DOUBLE, 3);
        INDArray x = Nd4j.rand(DataType.DOUBLE, 4, 3, 6, 6);
        INDArray z = b.forward(x);
        b.backward(z.dup());
        return b;
    }

    @Test
    void trainEvalTuneShareParametersFreely() {
        ConvBNBlock b = trained(config(true, true));
        Set<String> names = b.parameters().keySet();
        INDArray w = b.parameters().get(ParameterNames.CONV_WEIGHT);
        for (Mode m : new Mode[] {Mode.EVAL, Mode.TUNE, Mode.TRAIN, Mode.TUNE, Mode.EVAL}) {
            b.setMode(m);
            assertEquals(m, b.mode());
            assertEquals(names, b.parameters().keySet());
            assertTrue(w == b.parameters().get(ParameterNames.CONV_WEIGHT), "same live array");
        }
    }

    @Test
    void switchingDropsAPendingForward() {
        ConvBNBlock b = trained(config(true, true));
        b.setMode(Mode.EVAL);
        b.forward(Nd4j.rand(DataType.DOUBLE, 1, 3, 6, 6));
        b.setMode(Mode.TUNE);
        assertThrows(IllegalStateException.class, () -> b.backward(Nd4j.ones(DataType.DOUBLE, 1, 6, 6, 6)));
    }

    @Test
    void deployRoundTripRestoresTheParameters() {
        for (boolean bias : new boolean[] {true, false}) {
            for (boolean affine : new boolean[] {true, false}) {
                ConvBNBlock b = trained(config(bias, affine));
                b.setMode(Mode.EVAL);
                ConvBNParameters before = b.unfoldedParameters().copy();
                INDArray x = Nd4j.rand(DataType.DOUBLE, 2, 3, 6, 6);
                INDArray z = b.forward(x);
                b.setMode(Mode.DEPLOY);
                assertEquals(
                        Set.of(ParameterNames.FOLDED_WEIGHT, ParameterNames.FOLDED_BIAS),
                        b.parameters().keySet());
                assertTrue(RelativeError.of(Fixtures.values(z), Fixtures.values(b.forward(x)), 0) <= EQUIVALENT);
                b.setMode(Mode.EVAL);
                ConvBNParameters after = b.unfoldedParameters();
                before.trainable()
                        .forEach((name, t) -> assertTrue(
                                RelativeError.of(
                                                Fixtures.values(t),
                                                Fixtures.values(
                                                        after.trainable().get(name)),
                                                0)
                                        <= ROUND_TRIP,
                                name));
            }
        }
    }

    @Test
    void trainingDoneInDeployIsCarriedBack() {
        for (boolean bias : new boolean[] {true, false}) {
            ConvBNBlock b = trained(config(bias, true));
            b.setMode(Mode.DEPLOY);
            INDArray x = Nd4j.rand(DataType.DOUBLE, 2, 3, 6, 6);
            INDArray z = b.forward(x);
            Optimizer sgd = new Optimizer(new Sgd(0.1));
            sgd.step(b.parameters(), b.backward(z.dup()).parameters());
            INDArray zDeploy = b.forward(x);
            b.clearSaved();
            b.setMode(Mode.TUNE);
            assertTrue(
                    RelativeError.of(Fixtures.values(zDeploy), Fixtures.values(b.forward(x)), 0) <= EQUIVALENT,
                    "TUNE after DEPLOY training computes what DEPLOY computed");
        }
    }

    @Test
    void untrainableFoldedBiasChangeIsRefused() {
        ConvBNBlock b = trained(config(false, false));
        b.setMode(Mode.DEPLOY);
        b.parameters().get(ParameterNames.FOLDED_BIAS).addi(0.5);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> b.setMode(Mode.EVAL));
        assertTrue(
                e.getMessage().contains("folded.bias") && e.getMessage().contains("neither a conv bias"),
                e.getMessage());
    }

    @Test
    void zeroGammaCannotBeUnfolded() {
        ConvBNBlock b = trained(config(true, true));
        b.unfoldedParameters().gamma().putScalar(4, 0.0);
        b.setMode(Mode.DEPLOY);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> b.setMode(Mode.TUNE));
        assertTrue(e.getMessage().contains("channel 4"), e.getMessage());
    }

    @Test
    void foldDiagnosticsReportTheRangeOfSAndWarn() {
        ConvBNConfig config = config(true, true);
        ConvBNBlock b = ConvBNBlock.initialized(config, DataType.DOUBLE, 1);
        b.unfoldedParameters().runningVar().assign(Nd4j.createFromArray(1.0, 1.0, 0.01, 1.0, 4.0, 1.0));
        b.unfoldedParameters().gamma().assign(Nd4j.createFromArray(1.0, 1.0, 1.0, -1.0, 1.0, 1.0));
        FoldDiagnostics d = b.foldDiagnostics();
        double eps = 1e-3;
        assertEquals(-1 / Math.sqrt(1 + eps), d.minScale(), 1e-15);
        assertEquals(1 / Math.sqrt(0.01 + eps), d.maxScale(), 1e-12);
        assertEquals(2, d.maxAbsChannel());
        assertEquals(4, d.minAbsChannel());
        assertEquals((4 + eps) / (0.01 + eps), d.learningRateSpread(), 1e-9);
        assertTrue(d.deployTrainingWarning(FoldDiagnostics.DEFAULT_SPREAD_LIMIT)
                .orElseThrow()
                .contains("TUNE"));
        assertTrue(d.deployTrainingWarning(1e6).isEmpty());
        b.setMode(Mode.DEPLOY);
        assertEquals(d, b.foldDiagnostics(), "kept from fold time in DEPLOY");
    }
}
