package org.convbn.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.convbn.core.Mode;
import org.convbn.core.TuneFold;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** The builder: defaults, every setting, combinations the factories could not make, and bad settings named. */
class ResNetBuilderTest {
    @Test
    void groupedReversibleTuneKeepBuildsAndTrains() {
        try (ResNet net = ResNet.builder(ResNet.Variant.RESNET18)
                .classes(3)
                .dataType(DataType.DOUBLE)
                .seed(4)
                .mode(Mode.TUNE)
                .tuneFold(TuneFold.KEEP)
                .reversible(0.5)
                .groupSize(16)
                .build()) {
            assertEquals(4, net.reversibleStages().size());
            assertEquals(4, net.blocks().get(1).block().config().conv().groups(), "64 channels, 16 per group");
            assertEquals(TuneFold.KEEP, net.blocks().get(1).block().config().tuneFold());
            assertEquals(Mode.TUNE, net.mode());
            INDArray logits = net.forward(Nd4j.rand(DataType.DOUBLE, 2, 3, 32, 32));
            assertEquals(3, logits.size(1));
            Map<String, INDArray> grads = net.backward(
                    SoftmaxCrossEntropy.of(logits, new int[] {0, 2}).gradLogits());
            assertEquals(net.parameters().keySet(), grads.keySet());
        }
    }

    @Test
    void defaultsAreTorchvisionsHeadInFloatAndEval() {
        try (ResNet net = ResNet.builder(ResNet.Variant.RESNET18).build()) {
            assertEquals(1000, net.classes());
            assertEquals(DataType.FLOAT, net.dataType());
            assertEquals(Mode.EVAL, net.mode());
            assertTrue(net.reversibleStages().isEmpty());
            assertEquals(11_689_512L, net.totalCost(224, 224).parameters());
        }
    }

    @Test
    void badSettingsAreNamed() {
        ResNet.Builder b = ResNet.builder(ResNet.Variant.RESNET18);
        assertTrue(
                assertThrows(IllegalArgumentException.class, () -> b.classes(0).build())
                        .getMessage()
                        .startsWith("classes: expected >= 1"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> ResNet.builder(ResNet.Variant.RESNET18)
                        .dataType(DataType.HALF)
                        .build())
                .getMessage()
                .startsWith("dataType: expected FLOAT or DOUBLE"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> ResNet.builder(ResNet.Variant.RESNET18)
                        .reversible(-1)
                        .build())
                .getMessage()
                .startsWith("minBeta: expected a value >= 0"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> ResNet.builder(ResNet.Variant.RESNET18)
                        .groupSize(-2)
                        .build())
                .getMessage()
                .startsWith("groupSize: expected >= 0"));
        assertThrows(
                IllegalArgumentException.class,
                () -> ResNet.builder(ResNet.Variant.RESNET18).groupSize(7).build());
        assertThrows(NullPointerException.class, () -> ResNet.builder(null));
    }
}
