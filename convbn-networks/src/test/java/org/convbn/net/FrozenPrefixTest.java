package org.convbn.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import org.convbn.core.Mode;
import org.convbn.core.RetainedBytes;
import org.convbn.core.TuneFold;
import org.convbn.testkit.conformance.RelativeError;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A frozen prefix: the same logits and the same gradients for the trainable part as the whole network in its mode
 * (the frozen BN on running statistics, as EVAL), no gradient for the frozen blocks, nothing kept by them, fewer
 * bytes held in all; a new head.
 */
class FrozenPrefixTest {
    /**
     * Frozen blocks run TUNE's fold (W' = s W) where the reference runs EVAL's separate affine: the same math with
     * another rounding, float64, through up to 20 blocks.
     */
    static final double EQUIVALENCE = 1e-10;
    static final int[] LABELS = {3, 7};

    private static ResNet network(Mode mode) {
        ResNet net = ResNet.builder(ResNet.Variant.RESNET18).classes(10)
                .dataType(DataType.DOUBLE).seed(5).mode(Mode.EVAL).build();
        SplittableRandom rng = new SplittableRandom(77);
        for (NamedBlock b : net.blocks()) {
            var p = b.block().unfoldedParameters();
            for (int c = 0; c < p.runningVar().length(); c++) {
                p.runningVar().putScalar(c, 0.5 + rng.nextDouble());
                p.runningMean().putScalar(c, rng.nextDouble() - 0.5);
                p.gamma().putScalar(c, 0.5 + rng.nextDouble());
            }
        }
        net.setMode(mode);
        return net;
    }

    private static double error(INDArray a, INDArray b) {
        return RelativeError.of(a.reshape(a.length()).toDoubleVector(), b.reshape(b.length()).toDoubleVector(), 1e-3);
    }

    @ParameterizedTest
    @EnumSource(value = Mode.class, names = {"EVAL", "TUNE", "DEPLOY"})
    void theTrainablePartGetsTheWholeNetworksGradientsAndTheFrozenPartNone(Mode mode) {
        Nd4j.getRandom().setSeed(3);
        INDArray x = Nd4j.rand(DataType.DOUBLE, 2, 3, 32, 32).subi(0.5);
        ResNet whole = network(mode);
        INDArray reference = whole.forward(x);
        RetainedBytes wholeBytes = whole.retainedBytes();
        Map<String, INDArray> expected = whole.backward(SoftmaxCrossEntropy.of(reference, LABELS).gradLogits());
        long previous = wholeBytes.activationBytes();
        for (int frozen = 1; frozen <= 5; frozen++) {
            ResNet net = network(mode);
            net.setFrozenParts(frozen);
            assertEquals(mode, net.mode());
            INDArray logits = net.forward(x);
            assertTrue(error(reference, logits) <= EQUIVALENCE, "logits, " + frozen + " frozen");
            for (NamedBlock b : net.frozenBlocks()) {
                assertEquals(mode == Mode.DEPLOY ? Mode.DEPLOY : Mode.TUNE, b.block().mode(), b.convName());
                assertEquals(RetainedBytes.NONE, b.block().retainedBytes(), b.convName() + " keeps nothing");
            }
            long held = net.retainedBytes().activationBytes();
            assertTrue(held < previous, frozen + " frozen: " + held + " bytes held, expected < " + previous);
            previous = held;
            Map<String, INDArray> grads = net.backward(SoftmaxCrossEntropy.of(logits, LABELS).gradLogits());
            assertEquals(net.parameters().keySet(), grads.keySet(), "a gradient for every trainable tensor only");
            for (NamedBlock b : net.frozenBlocks()) {
                b.parameters().keySet().forEach(k -> assertTrue(!grads.containsKey(k), k + " is frozen"));
            }
            for (Map.Entry<String, INDArray> g : grads.entrySet()) {
                assertTrue(error(expected.get(g.getKey()), g.getValue()) <= EQUIVALENCE, frozen + " frozen: "
                        + g.getKey());
            }
            assertEquals(RetainedBytes.NONE, net.retainedBytes(), "everything given back after the backward");
        }
    }

    @Test
    void aFrozenPrefixKeepsItsBatchNormOnRunningStatisticsInTrain() {
        ResNet net = network(Mode.TRAIN);
        net.setFrozenParts(2);
        Map<String, INDArray> before = new LinkedHashMap<>();
        net.frozenBlocks().forEach(b -> before.put(b.convName(), b.block().unfoldedParameters().runningMean().dup()));
        org.convbn.train.TrainingStep.run(net, Nd4j.rand(DataType.DOUBLE, 2, 3, 32, 32), LABELS,
                new org.convbn.nd4j.Optimizer(new org.nd4j.linalg.learning.config.Sgd(0.1)));
        net.frozenBlocks().forEach(b -> assertEquals(before.get(b.convName()),
                b.block().unfoldedParameters().runningMean(), b.convName()));
        NamedBlock trainable = net.blocks().get(net.frozenBlocks().size());
        assertEquals(Mode.TRAIN, trainable.block().mode());
        net.setFrozenParts(0);
        net.blocks().forEach(b -> assertEquals(Mode.TRAIN, b.block().mode(), b.convName()));
    }

    @Test
    void badFreezesAreRefusedAndTheHeadIsReplaced() {
        ResNet net = network(Mode.TUNE);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> net.setFrozenParts(6));
        assertTrue(e.getMessage().contains("expected 0..5"), e.getMessage());
        ResNet reversible = ResNet.builder(ResNet.Variant.RESNET18).classes(10)
                .dataType(DataType.DOUBLE).seed(1).mode(Mode.TUNE).tuneFold(TuneFold.RECOMPUTE).reversible(0.5).build();
        assertThrows(IllegalStateException.class, () -> reversible.setFrozenParts(1));
        net.replaceHead(4, 9);
        assertEquals(4, net.classes());
        assertEquals(List.of(4L, 512L), List.of(net.parameters().get("fc.weight").shape()[0],
                net.parameters().get("fc.weight").shape()[1]));
        assertEquals(List.of(2L, 4L), List.of(net.forward(Nd4j.rand(DataType.DOUBLE, 2, 3, 32, 32)).shape()[0], 4L));
        assertThrows(IllegalArgumentException.class, () -> net.replaceHead(0, 1));
    }
}
