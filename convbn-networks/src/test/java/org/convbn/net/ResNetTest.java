package org.convbn.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.SplittableRandom;
import org.convbn.core.Mode;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** The network of blocks: its backward against finite differences, EVAL vs TUNE, and its retained bytes. */
class ResNetTest {
    /**
     * Central-difference step, float64. Smaller than for a single block: in TRAIN, layer4 normalises 2 values
     * per channel (batch 2 at 1x1), so the loss is strongly curved and a step of 1e-6 already gives a truncation
     * error of 3e-5 relative; at 1e-7 rounding (~1e-16 * L / h, ~2e-9 absolute) still stays far below tolerance.
     */
    static final double FD_STEP = 1e-7;
    /**
     * Network-level agreement with finite differences: ReLU and max-pool kinks make the loss only piecewise
     * smooth, so a sampled element can sit within FD_STEP of a kink; with random data that is rare and 1e-5
     * leaves room for the ~1e-8 truncation error of 20 layers deep.
     */
    static final double FD_TOLERANCE = 1e-5;
    /** EVAL vs TUNE through 20 blocks, float64. */
    static final double EQUIVALENCE = 1e-10;

    static final int[] LABELS = {3, 7};

    private static INDArray input() {
        return Nd4j.rand(DataType.DOUBLE, 2, 3, 32, 32).subi(0.5);
    }

    @Test
    void resnet50HasTheFiftyThreeConvBnPairsOfTorchvision() {
        ResNet net = ResNet.builder(ResNet.Variant.RESNET50)
                .classes(1000)
                .dataType(DataType.FLOAT)
                .seed(1)
                .mode(Mode.TUNE)
                .build();
        assertEquals(53, net.blocks().size());
        assertEquals("conv1", net.blocks().get(0).convName());
        assertTrue(net.parameters().containsKey("layer4.2.bn3.weight"));
        assertTrue(net.parameters().containsKey("layer3.0.downsample.0.weight"));
        assertTrue(net.parameters().containsKey("fc.weight"));
        assertEquals(
                20,
                ResNet.builder(ResNet.Variant.RESNET18)
                        .classes(10)
                        .dataType(DataType.FLOAT)
                        .seed(1)
                        .mode(Mode.TUNE)
                        .build()
                        .blocks()
                        .size());
    }

    @Test
    void backwardMatchesFiniteDifferencesInEveryMode() {
        Nd4j.getRandom().setSeed(1);
        INDArray x = input();
        for (Mode mode : Mode.values()) {
            ResNet net = ResNet.builder(ResNet.Variant.RESNET18)
                    .classes(10)
                    .dataType(DataType.DOUBLE)
                    .seed(5)
                    .mode(mode)
                    .build();
            randomiseStatistics(net);
            Map<String, INDArray> grads =
                    net.backward(SoftmaxCrossEntropy.of(net.forward(x), LABELS).gradLogits());
            SampledGradientCheck.check(
                    net,
                    grads,
                    new String[] {
                        "conv1", "layer1.0.conv1", "layer2.0.downsample.0", "layer4.1.conv2", "layer4.1.bn2", "fc"
                    },
                    2,
                    FD_STEP,
                    FD_TOLERANCE,
                    () -> loss(net, x, mode));
        }
    }

    @Test
    void evalAndTuneNetworksAgreeAndTuneKeepsOneFeatureMapPerBlockLess() {
        INDArray x = input();
        ResNet eval = ResNet.builder(ResNet.Variant.RESNET18)
                .classes(10)
                .dataType(DataType.DOUBLE)
                .seed(9)
                .mode(Mode.EVAL)
                .build();
        ResNet tune = ResNet.builder(ResNet.Variant.RESNET18)
                .classes(10)
                .dataType(DataType.DOUBLE)
                .seed(9)
                .mode(Mode.TUNE)
                .build();
        randomiseStatistics(eval);
        randomiseStatistics(tune);
        EvalTuneSteps.check(eval, tune, x, LABELS, 2, EQUIVALENCE);
    }

    private static double loss(ResNet net, INDArray x, Mode mode) {
        double l = SoftmaxCrossEntropy.of(net.forward(x), LABELS).loss();
        net.setMode(mode); // drop the pending forward
        return l;
    }

    /** Pretrained-like statistics so that s differs across channels. */
    static void randomiseStatistics(Network net) {
        SplittableRandom rng = new SplittableRandom(77);
        for (NamedBlock b : net.blocks()) {
            if (b.block().mode() == Mode.DEPLOY) {
                continue;
            }
            var p = b.block().unfoldedParameters();
            for (int c = 0; c < p.runningVar().length(); c++) {
                p.runningVar().putScalar(c, 0.5 + rng.nextDouble());
                p.runningMean().putScalar(c, rng.nextDouble() - 0.5);
                p.gamma().putScalar(c, 0.5 + rng.nextDouble());
            }
        }
    }
}
