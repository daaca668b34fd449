package org.convbn.dl4j;

import static org.convbn.dl4j.Dl4jFixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.convbn.core.Mode;
import org.deeplearning4j.nn.conf.WorkspaceMode;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.learning.config.Sgd;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * The converted residual graph against the DL4J original, in float64: outputs, every gradient, and the state after
 * fit steps. TRAIN is compared with the original's BN in training mode. EVAL, TUNE and DEPLOY compute what the
 * original fine-tuned the DL4J way (each BN in FrozenLayerWithBackprop) computes; their gradients are compared with
 * DL4J layers whose backward through the frozen BN is exact (the affine oracle of {@link Dl4jFixtures}), because
 * DL4J's BatchNormalization backpropagates the batch-statistics formula even when it normalised with its running
 * statistics (shown below).
 */
class ConverterEquivalenceTest {
    /**
     * float64, same math in another order (one fused affine instead of BN's subtract-divide-scale-shift, other
     * conv kernels): differences stay within a few hundred ulps of values of order 1.
     */
    static final double TOLERANCE = 1e-11;
    /** The running variance comes back from DL4J's log10(std) through pow and log: a few ulps more. */
    static final double RUNNING_VAR_TOLERANCE = 1e-10;

    private static final long SEED = 17;
    /** In declaration order. */
    private static final String[] CONVS = {"conv1", "conv3", "conv2"};

    private static final String[] BNS = {"bn1", "bn3", "bn2"};

    private static ComputationGraph original(boolean frozenBn) {
        // FrozenLayerWithBackprop(BatchNormalization) fails with workspaces in DL4J 1.0.0-M2.1.
        return Dl4jFixtures.residualGraph(
                DataType.DOUBLE, new Sgd(0.05), frozenBn, frozenBn ? WorkspaceMode.NONE : WorkspaceMode.ENABLED, SEED);
    }

    @Test
    void reportNamesEveryPair() {
        ConversionReport report = ConvBNConverter.convert(original(false)).report();
        assertEquals(3, report.converted().size(), report.toString());
        assertTrue(report.leftAlone().isEmpty(), report.toString());
        for (int i = 0; i < 3; i++) {
            ConversionReport.Converted c = report.converted().get(i);
            assertEquals(
                    List.of(CONVS[i], BNS[i], CONVS[i], "trainable"),
                    List.of(c.conv(), c.batchNorm(), c.layer(), c.training()));
        }
    }

    @ParameterizedTest
    @EnumSource(Mode.class)
    void inferenceOutputsEqualTheOriginals(Mode mode) {
        ComputationGraph original = original(false);
        ComputationGraph converted =
                ConvBNConverter.builder().mode(mode).build().apply(original).network();
        INDArray x = Dl4jFixtures.input(DataType.DOUBLE, 1);
        assertClose(mode + " output", original.outputSingle(x), converted.outputSingle(x), TOLERANCE);
        // The BN's own output in inference, per pair.
        Map<String, INDArray> a = original.feedForward(x, false);
        Map<String, INDArray> b = converted.feedForward(x, false);
        for (int i = 0; i < 3; i++) {
            assertClose(mode + " " + CONVS[i], a.get(BNS[i]), b.get(CONVS[i]), TOLERANCE);
        }
    }

    /**
     * Fine-tuning with frozen BN statistics: the same score as DL4J's FrozenLayerWithBackprop(BN), and the exact
     * gradients of that function, which DL4J computes with the affine oracle.
     */
    @ParameterizedTest
    @EnumSource(
            value = Mode.class,
            names = {"EVAL", "TUNE"})
    void frozenBnGradientsEqualTheExactDl4jGradients(Mode mode) {
        ComputationGraph original = original(true);
        ComputationGraph oracle = Dl4jFixtures.affineOracleOf(original, new Sgd(0.05), SEED);
        Conversion c = convert(original, mode);
        assertEquals("trainable, BN frozen: gamma and beta fixed", c.training);
        ComputationGraph converted = c.graph;
        Gradient expected = gradient(oracle);
        Gradient actual = gradient(converted);
        assertEquals(gradientAndScore(original), converted.score(), TOLERANCE, "score vs FrozenLayerWithBackprop(BN)");
        assertEquals(oracle.score(), converted.score(), TOLERANCE, "score vs the oracle");
        for (String conv : CONVS) {
            for (String p : new String[] {"W", "b"}) {
                String key = conv + "_" + p;
                if (expected.gradientForVariable().containsKey(key)) {
                    assertClose(mode + " " + key, expected.getGradientFor(key), actual.getGradientFor(key), TOLERANCE);
                }
            }
        }
        assertClose(mode + " out_W", expected.getGradientFor("out_W"), actual.getGradientFor("out_W"), TOLERANCE);
        // Two SGD steps (l2 included): the same weights as the oracle's; gamma, beta and statistics untouched.
        INDArray gammaBefore = converted.getParam("conv1_gamma").dup();
        for (int step = 0; step < 2; step++) {
            oracle.fit(new INDArray[] {input()}, new INDArray[] {labels()});
            converted.fit(new INDArray[] {input()}, new INDArray[] {labels()});
        }
        for (String conv : CONVS) {
            assertClose(
                    mode + " " + conv + "_W after fit",
                    oracle.getParam(conv + "_W"),
                    converted.getParam(conv + "_W"),
                    TOLERANCE);
        }
        assertClose(mode + " out_W after fit", oracle.getParam("out_W"), converted.getParam("out_W"), TOLERANCE);
        assertClose(mode + " conv1_gamma after fit", gammaBefore, converted.getParam("conv1_gamma"), 0);
    }

    /**
     * Why the oracle: DL4J's FrozenLayerWithBackprop(BatchNormalization) normalises with the running statistics but
     * backpropagates as if the batch statistics had been used, so the gradients below a frozen BN are not the
     * gradients of the function it computes. Measured here so the claim stays true for the DL4J version we build on.
     */
    @Test
    void dl4jFrozenBatchNormBackpropIsNotTheGradientOfItsForward() {
        ComputationGraph original = original(true);
        ComputationGraph oracle = Dl4jFixtures.affineOracleOf(original, new Sgd(0.05), SEED);
        INDArray dl4j = gradient(original).getGradientFor("conv1_W");
        INDArray exact = gradient(oracle).getGradientFor("conv1_W");
        double diff = dl4j.sub(exact).amaxNumber().doubleValue();
        assertTrue(
                diff > 1e-3 * exact.amaxNumber().doubleValue(),
                "DL4J's frozen-BN backward now matches the " + "exact gradient (max difference " + diff
                        + "); compare EVAL/TUNE with it directly");
    }

    /** TRAIN against DL4J's BatchNormalization in training mode: outputs, all gradients, running statistics. */
    @Test
    void trainModeMatchesDl4jTraining() {
        ComputationGraph original = original(false);
        ComputationGraph converted = convert(original, Mode.TRAIN).graph;
        INDArray x = input();
        Map<String, INDArray> a = original.feedForward(x, true);
        Map<String, INDArray> b = converted.feedForward(x, true);
        for (int i = 0; i < 3; i++) {
            assertClose("TRAIN " + CONVS[i], a.get(BNS[i]), b.get(CONVS[i]), TOLERANCE);
        }
        Gradient expected = gradient(original);
        Gradient actual = gradient(converted);
        assertEquals(original.score(), converted.score(), TOLERANCE, "score");
        for (int i = 0; i < 3; i++) {
            for (String p : new String[] {"W", "b"}) {
                String key = CONVS[i] + "_" + p;
                if (expected.gradientForVariable().containsKey(key)) {
                    assertClose("TRAIN " + key, expected.getGradientFor(key), actual.getGradientFor(key), TOLERANCE);
                }
            }
            for (String p : new String[] {"gamma", "beta", "mean"}) {
                assertClose(
                        "TRAIN " + p + " of " + CONVS[i],
                        expected.getGradientFor(BNS[i] + "_" + p),
                        actual.getGradientFor(CONVS[i] + "_" + p),
                        TOLERANCE);
            }
        }
        for (int step = 0; step < 3; step++) {
            original.fit(new INDArray[] {input()}, new INDArray[] {labels()});
            converted.fit(new INDArray[] {input()}, new INDArray[] {labels()});
        }
        assertSameState(original, converted, Mode.TRAIN);
    }

    /** Every parameter of the converted graph against its source in the original, including running statistics. */
    private static void assertSameState(ComputationGraph original, ComputationGraph converted, Mode mode) {
        assertClose(mode + " out_W after fit", original.getParam("out_W"), converted.getParam("out_W"), TOLERANCE);
        for (int i = 0; i < 3; i++) {
            String conv = CONVS[i];
            String bn = BNS[i];
            assertClose(
                    mode + " " + conv + "_W after fit",
                    original.getParam(conv + "_W"),
                    converted.getParam(conv + "_W"),
                    TOLERANCE);
            for (String p : new String[] {"gamma", "beta", "mean"}) {
                assertClose(
                        mode + " " + p + " of " + conv + " after fit",
                        original.getParam(bn + "_" + p),
                        converted.getParam(conv + "_" + p),
                        TOLERANCE);
            }
            INDArray log10Std = original.getParam(bn + "_log10stdev");
            INDArray var = Transforms.pow(log10Std.mul(0).addi(10), log10Std.mul(2));
            assertClose(
                    mode + " var of " + conv + " after fit",
                    var,
                    converted.getParam(conv + "_var"),
                    RUNNING_VAR_TOLERANCE);
        }
    }

    private record Conversion(ComputationGraph graph, String training) {}

    private static Conversion convert(ComputationGraph original, Mode mode) {
        ConvBNConverter.Conversion<ComputationGraph> c =
                ConvBNConverter.builder().mode(mode).build().apply(original);
        assertEquals(3, c.report().converted().size(), c.report().toString());
        return new Conversion(c.network(), c.report().converted().get(0).training());
    }

    private static double gradientAndScore(ComputationGraph g) {
        gradient(g);
        return g.score();
    }

    private static Gradient gradient(ComputationGraph g) {
        g.setInputs(input());
        g.setLabels(labels());
        g.computeGradientAndScore();
        return g.gradient();
    }

    private static INDArray input() {
        return Dl4jFixtures.input(DataType.DOUBLE, 2);
    }

    private static INDArray labels() {
        return Dl4jFixtures.labels(DataType.DOUBLE, 3);
    }
}
