package org.convbn.dl4j;

import static org.convbn.dl4j.Dl4jFixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.convbn.core.Mode;
import org.deeplearning4j.nn.conf.CacheMode;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.memory.MemoryUseMode;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.zoo.model.ResNet50;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * DL4J's zoo ResNet50 configuration (built, not downloaded) converted: all 53 Conv -> BN pairs fused, the same
 * inference output, and a fit step that runs.
 */
class ZooResNet50Test {
    /**
     * float32 through 53 conv layers: the fused affine rounds differently from BN's subtract-divide-scale-shift;
     * outputs are softmax probabilities of order 0.1.
     */
    private static final double FLOAT_TOLERANCE = 1e-4;

    private static final int CLASSES = 10;

    private static ComputationGraph original;
    private static ConvBNConverter.Conversion<ComputationGraph> conversion;

    @BeforeAll
    static void convert() {
        original = ResNet50.builder().numClasses(CLASSES).build().init();
        Dl4jFixtures.heScaleWeights(original.getLayers(), 4);
        Dl4jFixtures.randomizeBatchNormAndBiases(original.getLayers(), 4);
        conversion = ConvBNConverter.convert(original);
    }

    @AfterAll
    static void release() {
        original = null;
        conversion = null;
    }

    @Test
    void fusesAll53Pairs() {
        ConversionReport report = conversion.report();
        System.out.print(report);
        assertEquals(53, report.converted().size(), report.toString());
        assertTrue(report.leftAlone().isEmpty(), report.toString());
        assertEquals(Mode.TUNE, report.mode());
        ConversionReport.Converted first = report.converted().get(0);
        assertEquals(
                List.of("stem-cnn1", "stem-batch1", "stem-cnn1", "trainable"),
                List.of(first.conv(), first.batchNorm(), first.layer(), first.training()));
        ComputationGraph converted = conversion.network();
        assertEquals(53, ConvBNLayers.of(converted).size());
        assertEquals(original.numParams(), converted.numParams(), "same parameter count: W, b, gamma, beta, mean, var");
        ComputationGraphConfiguration conf = converted.getConfiguration();
        assertEquals(conf, ComputationGraphConfiguration.fromJson(conf.toJson()), "JSON round trip of the config");
        long bytes = conf.getMemoryReport(InputType.convolutional(224, 224, 3))
                .getTotalMemoryBytes(8, MemoryUseMode.TRAINING, CacheMode.NONE, DataType.FLOAT);
        assertTrue(bytes > 4 * original.numParams(), "DL4J's memory report counts at least the parameters: " + bytes);
    }

    @Test
    void inferenceOutputEqualsTheOriginal() {
        INDArray x = Nd4j.rand(DataType.FLOAT, 1, 3, 224, 224);
        assertClose(
                "ResNet50 output",
                original.outputSingle(x),
                conversion.network().outputSingle(x),
                FLOAT_TOLERANCE);
    }

    @Test
    void fitRuns() {
        ComputationGraph converted = conversion.network().clone();
        INDArray x = Nd4j.rand(DataType.FLOAT, 2, 3, 224, 224);
        INDArray y = Nd4j.zeros(DataType.FLOAT, 2, CLASSES);
        y.putScalar(0, 1, 1.0);
        y.putScalar(1, 7, 1.0);
        INDArray before = converted.getParam("res2a_branch2b_W").dup();
        converted.fit(new INDArray[] {x}, new INDArray[] {y});
        assertTrue(Double.isFinite(converted.score()), "score " + converted.score());
        assertNotEquals(
                0.0,
                converted.getParam("res2a_branch2b_W").sub(before).amaxNumber().doubleValue(),
                "a fit step moves the weights");
    }
}
