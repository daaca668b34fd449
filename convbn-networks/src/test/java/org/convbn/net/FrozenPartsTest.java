package org.convbn.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.convbn.core.Mode;
import org.convbn.core.RetainedBytes;
import org.convbn.core.TuneFold;
import org.convbn.nd4j.Optimizer;
import org.convbn.testkit.conformance.RelativeError;
import org.convbn.train.TrainingStep;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Sgd;

/**
 * A frozen prefix ({@link Network#setFrozenParts}) on every family: the same logits and the same gradients for the
 * trainable part as the whole network in its mode (the frozen BN on running statistics, as EVAL), no gradient for
 * the frozen blocks, nothing kept by them, fewer bytes held the more is frozen; a frozen BN keeps its statistics in
 * TRAIN; bad freezes are refused by name.
 */
class FrozenPartsTest {
    /**
     * Frozen blocks run TUNE's fold (W' = s W) where the reference runs EVAL's separate affine: the same math with
     * another rounding, float64, through up to 53 blocks.
     */
    static final double EQUIVALENCE = 1e-10;

    static final int[] LABELS = {3, 7};

    private static INDArray input() {
        Nd4j.getRandom().setSeed(3);
        return Nd4j.rand(DataType.DOUBLE, 2, 3, 32, 32).subi(0.5);
    }

    private static Network network(String model, Mode mode) {
        return SpreadStatistics.apply(Zoo.create(model, 10, DataType.DOUBLE, 5), mode);
    }

    private static ResNet resnet18(Mode mode) {
        return SpreadStatistics.apply(
                ResNet.builder(ResNet.Variant.RESNET18)
                        .classes(10)
                        .dataType(DataType.DOUBLE)
                        .seed(5)
                        .mode(Mode.EVAL)
                        .build(),
                mode);
    }

    @ParameterizedTest
    @CsvSource({
        "resnet18, EVAL",
        "resnet18, TUNE",
        "resnet18, DEPLOY",
        "mobilenet_v2, EVAL",
        "mobilenet_v2, DEPLOY",
        "efficientnet_b0, TUNE",
        "mobilenet_v3_large, TUNE",
        "regnet_y_400mf, TUNE"
    })
    void theTrainablePartGetsTheWholeNetworksGradientsAndTheFrozenPartNone(String model, Mode mode) {
        INDArray x = input();
        Map<String, INDArray> expected;
        INDArray reference;
        long previous;
        List<String> parts;
        try (Network whole = network(model, mode)) {
            parts = whole.freezableParts();
            assertEquals(
                    model.startsWith("regnet") ? "stem" : model.startsWith("resnet") ? "conv1" : "features.0",
                    parts.get(0));
            reference = whole.forward(x).dup();
            previous = whole.retainedBytes().activationBytes();
            expected = new LinkedHashMap<>(); // copies: the arena's arrays go with the network
            whole.backward(SoftmaxCrossEntropy.of(reference, LABELS).gradLogits())
                    .forEach((k, v) -> expected.put(k, v.dup()));
        }
        // the stem, one unit or stage, the middle, all but the last conv, everything
        for (int frozen : new TreeSet<>(List.of(1, 2, parts.size() / 2, parts.size() - 1, parts.size()))) {
            try (Network net = network(model, mode)) {
                net.setFrozenParts(frozen);
                assertEquals(frozen, net.frozenParts());
                assertEquals(mode, net.mode());
                INDArray logits = net.forward(x);
                assertTrue(error(reference, logits) <= EQUIVALENCE, model + " logits, " + frozen + " frozen");
                assertFalse(net.frozenBlocks().isEmpty());
                for (NamedBlock b : net.frozenBlocks()) {
                    assertEquals(
                            mode == Mode.DEPLOY ? Mode.DEPLOY : Mode.TUNE,
                            b.block().mode(),
                            b.convName());
                    assertEquals(RetainedBytes.NONE, b.block().retainedBytes(), b.convName() + " keeps nothing");
                }
                long held = net.retainedBytes().activationBytes();
                assertTrue(held < previous, frozen + " frozen: " + held + " bytes held, expected < " + previous);
                previous = held;
                Map<String, INDArray> grads =
                        net.backward(SoftmaxCrossEntropy.of(logits, LABELS).gradLogits());
                assertEquals(net.parameters().keySet(), grads.keySet(), "a gradient for every trainable tensor only");
                for (NamedBlock b : net.frozenBlocks()) {
                    b.parameters().keySet().forEach(k -> assertFalse(grads.containsKey(k), k + " is frozen"));
                }
                for (Map.Entry<String, INDArray> g : grads.entrySet()) {
                    assertTrue(
                            error(expected.get(g.getKey()), g.getValue()) <= EQUIVALENCE,
                            model + ", " + frozen + " frozen: " + g.getKey());
                }
                assertEquals(RetainedBytes.NONE, net.retainedBytes(), "everything given back after the backward");
            }
        }
    }

    private static double error(INDArray a, INDArray b) {
        return RelativeError.of(
                a.reshape(a.length()).toDoubleVector(), b.reshape(b.length()).toDoubleVector(), 1e-3);
    }

    @Test
    void aFrozenPrefixKeepsItsBatchNormOnRunningStatisticsInTrain() {
        ResNet net = resnet18(Mode.TRAIN);
        net.setFrozenParts(2);
        Map<String, INDArray> before = new LinkedHashMap<>();
        net.frozenBlocks()
                .forEach(b -> before.put(
                        b.convName(),
                        b.block().unfoldedParameters().runningMean().dup()));
        TrainingStep.run(net, Nd4j.rand(DataType.DOUBLE, 2, 3, 32, 32), LABELS, new Optimizer(new Sgd(0.1)));
        net.frozenBlocks()
                .forEach(b -> assertEquals(
                        before.get(b.convName()), b.block().unfoldedParameters().runningMean(), b.convName()));
        NamedBlock trainable = net.blocks().get(net.frozenBlocks().size());
        assertEquals(Mode.TRAIN, trainable.block().mode());
        net.setFrozenParts(0);
        net.blocks().forEach(b -> assertEquals(Mode.TRAIN, b.block().mode(), b.convName()));
    }

    @Test
    void badFreezesAreRefusedAndTheHeadIsReplaced() {
        ResNet net = resnet18(Mode.TUNE);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> net.setFrozenParts(6));
        assertTrue(e.getMessage().contains("expected 0..5"), e.getMessage());
        ResNet reversible = ResNet.builder(ResNet.Variant.RESNET18)
                .classes(10)
                .dataType(DataType.DOUBLE)
                .seed(1)
                .mode(Mode.TUNE)
                .tuneFold(TuneFold.RECOMPUTE)
                .reversible(0.5)
                .build();
        assertThrows(IllegalStateException.class, () -> reversible.setFrozenParts(1));
        net.replaceHead(4, 9);
        assertEquals(4, net.classes());
        assertEquals(
                List.of(4L, 512L),
                List.of(
                        net.parameters().get("fc.weight").shape()[0],
                        net.parameters().get("fc.weight").shape()[1]));
        assertEquals(
                List.of(2L, 4L),
                List.of(net.forward(Nd4j.rand(DataType.DOUBLE, 2, 3, 32, 32)).shape()[0], 4L));
        assertThrows(IllegalArgumentException.class, () -> net.replaceHead(0, 1));
    }
}
