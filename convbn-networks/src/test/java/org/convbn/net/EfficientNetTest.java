package org.convbn.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.convbn.core.ConvConfig;
import org.convbn.core.Cost;
import org.convbn.core.Mode;
import org.convbn.testkit.conformance.RelativeError;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * EfficientNet-B0 of ConvBN blocks: torchvision's names, shapes and counts, its backward against finite differences
 * in every mode, EVAL vs TUNE (with dropout and stochastic depth drawn), DEPLOY vs EVAL, and its retained bytes.
 */
class EfficientNetTest {
    /** torchvision 0.14's efficientnet_b0: sum of p.numel() over parameters(). */
    static final long TORCHVISION_PARAMETERS = 5_288_548;
    /** Multiply-adds of its Conv2d and Linear layers at 224x224, per image (forward hooks on torchvision 0.14). */
    static final long TORCHVISION_MULTIPLY_ADDS_224 = 385_814_752;
    /** Central-difference step, float64: as ResNetTest's, TRAIN normalises 2 values per channel at 1x1. */
    static final double FD_STEP = 1e-7;
    /**
     * Central-difference step of the proxy-normalised variant: no batch statistics, so the loss is smooth at larger
     * steps, while at 1e-7 the float64 rounding of 49 layers (~1e-15 of the loss) already shows at 1e-8 (measured:
     * an SE weight's derivative 1.85489e-3 to 1e-8 relative at 1e-4 and 1e-5, 1.3e-5 off at 1e-7).
     */
    static final double PROXY_FD_STEP = 1e-5;
    /**
     * Agreement with finite differences: SiLU and sigmoid are smooth, so unlike ResNet's ReLU there are no kinks;
     * what is left is the truncation error through 49 blocks (~1e-8) and rounding (~1e-16 L / h).
     */
    static final double FD_TOLERANCE = 1e-5;
    /** EVAL vs TUNE and DEPLOY vs EVAL through 49 blocks, float64: the fold's reassociation only. */
    static final double EQUIVALENCE = 1e-10;

    static final int[] LABELS = {3, 7};

    private static INDArray input() {
        return input(32);
    }

    private static INDArray input(int resolution) {
        Nd4j.getRandom().setSeed(3);
        return Nd4j.rand(DataType.DOUBLE, 2, 3, resolution, resolution).subi(0.5);
    }

    /**
     * Running statistics set to the batch statistics of 4 random 64x64 images by one TRAIN forward at momentum 1, as
     * a trained network's: with PyTorch's initialisation (BN the identity in EVAL, SE gates near 0.5) the signal
     * shrinks by orders of magnitude per unit and the logits would be the classifier's bias alone; and the test
     * batch's own statistics at 32x32 come from 2 values per channel in the last stages, whose near-zero variances
     * make the network's gain explode.
     */
    static void calibrate(EfficientNet net, Mode target) {
        Nd4j.getRandom().setSeed(5);
        INDArray x = Nd4j.rand(DataType.DOUBLE, 4, 3, 64, 64).subi(0.5);
        boolean stochastic = net.stochastic();
        net.setStochastic(false);
        net.setMode(Mode.TRAIN);
        net.arena().release(net.forward(x));
        net.clearSaved();
        net.setMode(target);
        net.setStochastic(stochastic);
    }

    private static EfficientNet.Builder small(Mode mode) {
        return EfficientNet.builder()
                .classes(10)
                .dataType(DataType.DOUBLE)
                .seed(11)
                .mode(mode)
                .batchNormMomentum(1);
    }

    @Test
    void countsAreTorchvisions() {
        try (EfficientNet net = EfficientNet.builder().build()) {
            Cost c = net.totalCost(224, 224);
            assertEquals(TORCHVISION_PARAMETERS, c.parameters());
            assertEquals(TORCHVISION_MULTIPLY_ADDS_224, c.multiplyAdds());
            assertEquals(49, net.blocks().size());
            assertEquals(16, net.units().size());
            assertEquals(9, net.units().stream().filter(MBConv::residual).count());
            assertEquals(0.2 * 15 / 16, net.units().get(15).dropProbability(), 1e-15);
        }
    }

    @Test
    void stateDictHasTorchvisionsNamesAndShapesAndLoadsStrictly() throws IOException {
        Map<String, long[]> expected = torchvisionShapes();
        try (EfficientNet net = EfficientNet.builder().seed(2).build()) {
            Map<String, INDArray> ours = StateDict.of(net);
            assertEquals(expected.keySet(), ours.keySet());
            ours.forEach((k, v) ->
                    assertTrue(Arrays.equals(expected.get(k), v.shape()), k + " " + Arrays.toString(v.shape())));
            Map<String, INDArray> given = new LinkedHashMap<>();
            expected.forEach((k, s) -> given.put(k, Nd4j.rand(DataType.FLOAT, s)));
            given.put("features.0.1.num_batches_tracked", Nd4j.scalar(3L));
            StateDict.load(net, given);
            assertEquals(
                    given.get("features.4.2.block.2.fc1.bias"), net.parameters().get("features.4.2.block.2.fc1.bias"));
            net.replaceHead(5, 1); // transfer: a new classifier, the loaded features kept
            assertEquals(5, net.classes());
            assertEquals(
                    given.get("features.4.2.block.2.fc1.bias"), net.parameters().get("features.4.2.block.2.fc1.bias"));
            net.replaceHead(1000, 1);
            given.remove("features.1.0.block.1.fc2.weight");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> StateDict.load(net, given));
            assertTrue(e.getMessage().contains("missing [features.1.0.block.1.fc2.weight]"), e.getMessage());
        }
    }

    static Map<String, long[]> torchvisionShapes() throws IOException {
        Map<String, long[]> m = new LinkedHashMap<>();
        try (InputStream in = EfficientNetTest.class.getResourceAsStream("/torchvision/efficientnet_b0.tsv")) {
            for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
                if (line.isBlank() || line.startsWith("#")) {
                    continue;
                }
                String[] f = line.split("\t");
                m.put(
                        f[0],
                        Arrays.stream(f[1].split(","))
                                .mapToLong(Long::parseLong)
                                .toArray());
            }
        }
        return m;
    }

    @Test
    void backwardMatchesFiniteDifferencesInEveryMode() {
        INDArray r = Nd4j.rand(DataType.DOUBLE, 2, 10).subi(0.5);
        INDArray x = input();
        try (EfficientNet net = small(Mode.EVAL).build()) {
            calibrate(net, Mode.EVAL);
            net.setStochastic(false); // the same function on every evaluation
            for (Mode mode : new Mode[] {Mode.EVAL, Mode.TUNE, Mode.DEPLOY}) {
                net.setMode(mode);
                checkFiniteDifferences(net, x, r);
            }
        }
        // TRAIN needs no calibration (batch statistics), but 64x64: at 32x32 the last stages normalise 2 values per
        // channel, and the loss is too curved for any step (float64 rounding at 1e-7, truncation beyond)
        try (EfficientNet net = small(Mode.TRAIN).build()) {
            net.setStochastic(false);
            checkFiniteDifferences(net, input(64), r);
        }
    }

    private static void checkFiniteDifferences(EfficientNet net, INDArray x, INDArray r) {
        INDArray logits = net.forward(x);
        assertTrue(Double.isFinite(logits.mul(r).sumNumber().doubleValue()));
        Map<String, INDArray> grads = net.backward(r);
        SampledGradientCheck.check(
                net,
                grads,
                new String[] {
                    "features.0.0",
                    "features.1.0.block.0.0",
                    "features.1.0.block.1.fc1",
                    "features.2.1.block.2.fc2",
                    "features.4.2.block.3.1",
                    "features.3.1.block.1.0",
                    "features.8.1",
                    "classifier.1"
                },
                1,
                FD_STEP,
                FD_TOLERANCE,
                () -> loss(net, x, r));
    }

    private static double loss(EfficientNet net, INDArray x, INDArray r) {
        double l = net.forward(x).mul(r).sumNumber().doubleValue();
        net.clearSaved();
        return l;
    }

    @Test
    void evalAndTuneAgreeWithDropoutAndStochasticDepthDrawnAndTuneKeepsLess() {
        INDArray x = input();
        // A high drop rate, so that the two-sample batch drops some residual branches in the two steps.
        try (EfficientNet eval = small(Mode.EVAL).stochasticDepth(0.6).build();
                EfficientNet tune = small(Mode.TUNE).stochasticDepth(0.6).build()) {
            calibrate(eval, Mode.EVAL);
            calibrate(tune, Mode.TUNE);
            EvalTuneSteps.check(eval, tune, x, LABELS, 2, EQUIVALENCE);
        }
    }

    @Test
    void stochasticDepthAndDropoutChangeTheOutputOnlyWhenOn() {
        INDArray x = input();
        try (EfficientNet net = small(Mode.EVAL).stochasticDepth(0.6).build()) {
            calibrate(net, Mode.EVAL);
            net.setStochastic(false);
            double[] a = EvalTuneSteps.flat(net.forward(x));
            net.clearSaved();
            double[] b = EvalTuneSteps.flat(net.forward(x));
            net.clearSaved();
            assertEquals(0, RelativeError.of(a, b, 0));
            net.setStochastic(true);
            double[] c = EvalTuneSteps.flat(net.forward(x));
            net.clearSaved();
            assertFalse(RelativeError.of(a, c, 0) < 1e-3, "a drawn forward equals the deterministic one");
        }
    }

    @Test
    void deployComputesWhatEvalComputes() {
        INDArray x = input();
        try (EfficientNet net = small(Mode.EVAL).build()) {
            calibrate(net, Mode.EVAL);
            net.setStochastic(false);
            double[] eval = EvalTuneSteps.flat(net.forward(x));
            net.setMode(Mode.DEPLOY);
            double[] deploy = EvalTuneSteps.flat(net.forward(x));
            assertTrue(RelativeError.of(eval, deploy, 0) <= EQUIVALENCE);
            assertEquals(
                    0,
                    net.parameters().keySet().stream()
                            .filter(k -> k.contains(".1.running"))
                            .count());
        }
    }

    @Test
    void theGroupedVariantHasGroupConvsAndFewerExpandedChannels() {
        try (EfficientNet g16 = EfficientNet.builder()
                .groupSize(16)
                .dataType(DataType.DOUBLE)
                .classes(10)
                .seed(4)
                .build()) {
            ConvConfig dw = g16.units().get(1).depthwiseLayer().conv();
            assertEquals(64, dw.outChannels()); // 16 x 4 instead of 16 x 6
            assertEquals(4, dw.groups());
            assertEquals(2, g16.units().get(0).depthwiseLayer().conv().groups()); // 32 / 16
            g16.setStochastic(false);
            INDArray logits = g16.forward(input());
            Map<String, INDArray> grads =
                    g16.backward(SoftmaxCrossEntropy.of(logits, LABELS).gradLogits());
            assertEquals(g16.parameters().keySet(), grads.keySet());
        }
        assertThrows(
                IllegalArgumentException.class,
                () -> EfficientNet.builder().groupSize(7).build());
    }

    @Test
    void theProxyNormVariantCountsItsNormsAndMatchesFiniteDifferencesAndIgnoresTheBatch() {
        try (EfficientNet bn = EfficientNet.builder().build();
                EfficientNet proxy = EfficientNet.builder()
                        .normalization(EfficientNet.Normalization.GROUP_NORM_PROXY)
                        .build()) {
            long normalised = bn.blocks().stream()
                    .mapToLong(b -> b.block().config().channels())
                    .sum();
            Cost c = proxy.totalCost(224, 224);
            // gamma, beta, beta_tilde, gamma_tilde per channel where BN has gamma and beta
            assertEquals(TORCHVISION_PARAMETERS + 2 * normalised, c.parameters());
            assertEquals(TORCHVISION_MULTIPLY_ADDS_224, c.multiplyAdds());
            assertTrue(proxy.blocks().isEmpty());
            assertTrue(proxy.parameters().containsKey("features.4.2.block.3.1.gamma_tilde"));
            assertEquals(proxy.parameters().keySet(), StateDict.of(proxy).keySet());
        }
        INDArray x = input();
        INDArray r = Nd4j.rand(DataType.DOUBLE, 2, 10).subi(0.5);
        try (EfficientNet net = small(Mode.EVAL)
                .normalization(EfficientNet.Normalization.GROUP_NORM_PROXY)
                .build()) {
            net.setStochastic(false);
            for (Mode mode : new Mode[] {Mode.TRAIN, Mode.TUNE}) { // no batch statistics: every mode alike
                net.setMode(mode);
                INDArray logits = net.forward(x);
                assertTrue(Double.isFinite(logits.mul(r).sumNumber().doubleValue()));
                Map<String, INDArray> grads = net.backward(r);
                assertEquals(net.parameters().keySet(), grads.keySet());
                SampledGradientCheck.check(
                        net,
                        grads,
                        new String[] {
                            "features.0.0.weight",
                            "features.0.1.gamma",
                            "features.2.1.block.1.1.beta_tilde",
                            "features.4.2.block.3.1.gamma_tilde",
                            "features.4.2.block.3.0.weight",
                            "features.3.0.block.2.fc1.weight",
                            "classifier.1.bias"
                        },
                        1,
                        PROXY_FD_STEP,
                        FD_TOLERANCE,
                        () -> loss(net, x, r));
            }
            // batch independence: sample 0's logits do not move when sample 1 is replaced
            double[] before = EvalTuneSteps.flat(net.forward(x).getRow(0));
            net.clearSaved();
            INDArray other = x.dup();
            other.get(NDArrayIndex.point(1)).muli(10);
            double[] after = EvalTuneSteps.flat(net.forward(other).getRow(0));
            net.clearSaved();
            assertTrue(RelativeError.of(before, after, 0) <= EQUIVALENCE);
        }
    }

    @Test
    void badSettingsAndInputsAreNamed() {
        assertTrue(assertThrows(
                        IllegalArgumentException.class,
                        () -> EfficientNet.builder().dropout(1).build())
                .getMessage()
                .startsWith("dropout:"));
        try (EfficientNet net = small(Mode.EVAL).build()) {
            IllegalArgumentException e = assertThrows(
                    IllegalArgumentException.class, () -> net.forward(Nd4j.zeros(DataType.DOUBLE, 1, 3, 16, 16)));
            assertTrue(e.getMessage().startsWith("x: expected [N, 3, H, W] with H, W >= 32"), e.getMessage());
            assertThrows(
                    IllegalStateException.class,
                    () -> net.backward(Nd4j.zeros(DataType.DOUBLE, 1, 10), GradientSink.into(new LinkedHashMap<>())));
        }
    }
}
