package org.convbn.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.convbn.core.Mode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * MobileNetV2 (ReLU6, no gate), MobileNetV3 (hardswish, hardsigmoid gates, a hidden linear layer in the head) and
 * RegNetY (projection shortcuts, ReLU after the sum, grouped convs, gates) of ConvBN blocks: the backward against
 * finite differences in every fine-tuning mode, EVAL vs TUNE step by step, the part names and head replacement. (Their
 * frozen parts: {@link FrozenPartsTest}; their float64 agreement with torchvision: {@link ZooUnitsTest}.)
 */
class InvertedResidualNetworkTest {
    /** Central-difference step, float64, as ResNetTest's. */
    static final double FD_STEP = 1e-7;
    /**
     * ReLU6, ReLU, hardswish and hardsigmoid are piecewise smooth: a sampled entry within FD_STEP of a kink is rare
     * with random data, and elsewhere only truncation (~1e-8) and rounding are left; as ResNetTest's ReLU network.
     */
    static final double FD_TOLERANCE = 1e-5;
    /** EVAL vs TUNE through 52 blocks, float64: the fold's reassociation only. */
    static final double EQUIVALENCE = 1e-10;

    static final int[] LABELS = {3, 7};

    private static INDArray input() {
        Nd4j.getRandom().setSeed(3);
        return Nd4j.rand(DataType.DOUBLE, 2, 3, 32, 32).subi(0.5);
    }

    private static MobileNetV2 mobileNet(Mode mode) {
        MobileNetV2 net = MobileNetV2.builder()
                .classes(10)
                .dataType(DataType.DOUBLE)
                .seed(5)
                .mode(Mode.EVAL)
                .build();
        net.setStochastic(false);
        return SpreadStatistics.apply(net, mode);
    }

    private static Network network(String model, Mode mode) {
        return SpreadStatistics.apply(Zoo.create(model, 10, DataType.DOUBLE, 5), mode);
    }

    @ParameterizedTest
    @EnumSource(
            value = Mode.class,
            names = {"EVAL", "TUNE", "DEPLOY"})
    void mobileNetsBackwardMatchesFiniteDifferences(Mode mode) {
        INDArray x = input();
        INDArray r = Nd4j.rand(DataType.DOUBLE, 2, 10).subi(0.5);
        try (MobileNetV2 net = mobileNet(mode)) {
            assertTrue(Double.isFinite(net.forward(x).mul(r).sumNumber().doubleValue()));
            Map<String, INDArray> grads = net.backward(r);
            SampledGradientCheck.check(
                    net,
                    grads,
                    new String[] {
                        "features.0.0",
                        "features.1.conv.0.1",
                        "features.1.conv.1",
                        "features.2.conv.0.0",
                        "features.5.conv.1.1",
                        "features.7.conv.2",
                        "features.7.conv.3",
                        "features.18.0",
                        "classifier.1"
                    },
                    2,
                    FD_STEP,
                    FD_TOLERANCE,
                    () -> {
                        double l = net.forward(x).mul(r).sumNumber().doubleValue();
                        net.clearSaved();
                        return l;
                    });
        }
    }

    /**
     * Sampled tensors: the stem, a gate's two layers, a unit's convs and BN, a shortcut, the head's layers; in TUNE
     * (EVAL's gradients, compared with EVAL's in the steps above) and DEPLOY (other parameters).
     */
    @ParameterizedTest
    @CsvSource({
        "mobilenet_v3_large, TUNE",
        "mobilenet_v3_large, DEPLOY",
        "regnet_y_400mf, TUNE",
        "regnet_y_400mf, DEPLOY"
    })
    void gatedNetworksBackwardMatchesFiniteDifferences(String model, Mode mode) {
        INDArray x = input();
        INDArray r = Nd4j.rand(DataType.DOUBLE, 2, 10).subi(0.5);
        String[] tensors = model.startsWith("mobilenet")
                ? new String[] {
                    "features.0.0",
                    "features.4.block.2.fc1",
                    "features.4.block.2.fc2",
                    "features.7.block.0.0",
                    "features.7.block.1.1",
                    "features.13.block.3.0",
                    "features.16.1",
                    "classifier.0",
                    "classifier.3"
                }
                : new String[] {
                    "stem.0",
                    "trunk_output.block1.block1-0.proj.0",
                    "trunk_output.block1.block1-0.f.b.0",
                    "trunk_output.block2.block2-1.f.se.fc1",
                    "trunk_output.block2.block2-1.f.se.fc2",
                    "trunk_output.block3.block3-2.f.c.1",
                    "trunk_output.block4.block4-0.proj.1",
                    "fc"
                };
        try (Network net = network(model, mode)) {
            assertTrue(Double.isFinite(net.forward(x).mul(r).sumNumber().doubleValue()));
            Map<String, INDArray> grads = net.backward(r);
            SampledGradientCheck.check(net, grads, tensors, 1, FD_STEP, FD_TOLERANCE, () -> {
                double l = net.forward(x).mul(r).sumNumber().doubleValue();
                net.clearSaved();
                return l;
            });
        }
    }

    @Test
    void mobileNetsEvalAndTuneAgreeWithDropoutDrawnAndTuneKeepsLess() {
        try (MobileNetV2 eval = mobileNet(Mode.EVAL);
                MobileNetV2 tune = mobileNet(Mode.TUNE)) {
            eval.setStochastic(true);
            tune.setStochastic(true);
            EvalTuneSteps.check(eval, tune, input(), LABELS, 2, EQUIVALENCE);
        }
    }

    @Test
    void badFreezesAreRefusedByNameAndTheHeadIsReplaced() {
        try (MobileNetV2 net = mobileNet(Mode.TUNE)) {
            assertEquals(19, net.freezableParts().size());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> net.setFrozenParts(20));
            assertTrue(
                    e.getMessage().contains("expected 0..19 (of features.0 .. features.18), got 20"), e.getMessage());
            net.replaceHead(4, 9);
            assertEquals(4, net.classes());
            assertEquals(List.of(2L, 4L), List.of(net.forward(input()).shape()[0], (long) net.classes()));
            assertThrows(IllegalArgumentException.class, () -> net.replaceHead(0, 1));
        }
    }
}
