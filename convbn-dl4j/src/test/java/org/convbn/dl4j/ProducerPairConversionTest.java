package org.convbn.dl4j;

import static org.convbn.dl4j.Dl4jFixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.SplittableRandom;
import org.convbn.core.Mode;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.ConvolutionMode;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.ActivationLayer;
import org.deeplearning4j.nn.conf.layers.BatchNormalization;
import org.deeplearning4j.nn.conf.layers.Deconvolution2D;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.GlobalPoolingLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.conf.layers.PoolingType;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.params.BatchNormalizationParamInitializer;
import org.deeplearning4j.nn.weights.WeightInit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Sgd;
import org.nd4j.linalg.lossfunctions.LossFunctions;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * Deconvolution2D -> BatchNormalization and DenseLayer -> BatchNormalization pairs fuse into ConvBN layers of the
 * transposed and linear kinds; the converted network computes the original's function in every mode and trains
 * as DL4J trains the pairs in TRAIN; pairs that cannot fuse are reported with the reason.
 */
class ProducerPairConversionTest {
    /** float64; see {@link ConverterEquivalenceTest#TOLERANCE}. */
    private static final double TOLERANCE = ConverterEquivalenceTest.TOLERANCE;
    /** The running variance comes back from DL4J's log10(std); see {@link ConverterEquivalenceTest}. */
    private static final double RUNNING_VAR_TOLERANCE = ConverterEquivalenceTest.RUNNING_VAR_TOLERANCE;

    private static final long[] INPUT_SHAPE = {4, 2, 5, 4};
    private static final int CLASSES = 3;

    private static MultiLayerNetwork original() {
        MultiLayerConfiguration conf = new NeuralNetConfiguration.Builder()
                .seed(5)
                .dataType(DataType.DOUBLE)
                .updater(new Sgd(0.05))
                .weightInit(WeightInit.XAVIER)
                .list()
                .layer(new Deconvolution2D.Builder(3, 3)
                        .stride(2, 2)
                        .padding(1, 1)
                        .nOut(4)
                        .activation(Activation.IDENTITY)
                        .build()) // 0 fused
                .layer(new BatchNormalization()) // 1
                .layer(new Deconvolution2D.Builder(2, 2)
                        .stride(2, 2)
                        .convolutionMode(ConvolutionMode.Same)
                        .nOut(3)
                        .activation(Activation.IDENTITY)
                        .build()) // 2 Same mode
                .layer(new BatchNormalization()) // 3
                .layer(new ActivationLayer(Activation.TANH)) // 4
                .layer(new GlobalPoolingLayer(PoolingType.AVG)) // 5
                .layer(new DenseLayer.Builder()
                        .nOut(6)
                        .activation(Activation.IDENTITY)
                        .build()) // 6 fused
                .layer(new BatchNormalization()) // 7
                .layer(new ActivationLayer(Activation.TANH)) // 8
                .layer(new DenseLayer.Builder()
                        .nOut(5)
                        .activation(Activation.RELU)
                        .build()) // 9 activation
                .layer(new BatchNormalization()) // 10
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT)
                        .nOut(CLASSES)
                        .activation(Activation.SOFTMAX)
                        .build()) // 11
                .setInputType(InputType.convolutional(INPUT_SHAPE[2], INPUT_SHAPE[3], INPUT_SHAPE[1]))
                .build();
        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        Dl4jFixtures.randomizeBatchNormAndBiases(net.getLayers(), 8);
        SplittableRandom rng = new SplittableRandom(9);
        for (Layer l : net.getLayers()) {
            INDArray b = l.paramTable().get("b");
            if (b != null && !l.paramTable().containsKey(BatchNormalizationParamInitializer.GAMMA)) {
                Dl4jFixtures.fill(b, rng, -0.5, 0.5);
            }
        }
        return net;
    }

    private static MultiLayerNetwork convert(MultiLayerNetwork original, Mode mode) {
        ConvBNConverter.Conversion<MultiLayerNetwork> c =
                ConvBNConverter.builder().mode(mode).build().apply(original);
        return c.network();
    }

    @Test
    void fusesBothPairsAndSaysWhyItLeftTheRest() {
        ConversionReport r = ConvBNConverter.builder().build().apply(original()).report();
        assertEquals(
                List.of(
                        new ConversionReport.Converted("0", "1", "0", "trainable"),
                        new ConversionReport.Converted("6", "7", "5", "trainable")),
                r.converted(),
                r.toString());
        List<String> left =
                r.leftAlone().stream().map(l -> l.layer() + ": " + l.reason()).toList();
        assertEquals(4, left.size(), r.toString());
        assertTrue(left.get(0).startsWith("2: a Deconvolution2D in ConvolutionMode.Same"), left.get(0));
        assertTrue(
                left.get(1)
                        .startsWith(
                                "3: not preceded by a fusable ConvolutionLayer, Deconvolution2D or " + "DenseLayer"),
                left.get(1));
        assertTrue(left.get(2).startsWith("9: its activation is relu"), left.get(2));
        assertTrue(left.get(3).startsWith("10: not preceded"), left.get(3));
    }

    @ParameterizedTest
    @EnumSource(Mode.class)
    void convertedNetworksComputeTheOriginalsFunction(Mode mode) {
        MultiLayerNetwork original = original();
        MultiLayerNetwork converted = convert(original, mode);
        assertEquals(original.getnLayers() - 2, converted.getnLayers());
        List<ConvBNRuntimeLayer> fused = ConvBNLayers.of(converted);
        assertEquals(
                List.of(ConvBNLayer.Kind.CONV_TRANSPOSE2D, ConvBNLayer.Kind.LINEAR),
                fused.stream().map(l -> l.layerConf().getKind()).toList());
        assertEquals(
                List.of(mode, mode),
                fused.stream().map(ConvBNRuntimeLayer::mode).toList());
        String json = converted.getLayerWiseConfigurations().toJson();
        assertEquals(
                converted.getLayerWiseConfigurations(),
                MultiLayerConfiguration.fromJson(json),
                "the kinds survive JSON");
        INDArray x = input();
        assertClose(mode + " output", original.output(x), converted.output(x), TOLERANCE);
    }

    /** TRAIN against DL4J's own layers in training mode: score, gradients of both pairs, and three SGD steps. */
    @Test
    void trainModeMatchesDl4jTraining() {
        MultiLayerNetwork original = original();
        MultiLayerNetwork converted = convert(original, Mode.TRAIN);
        Gradient expected = gradient(original);
        Gradient actual = gradient(converted);
        assertEquals(original.score(), converted.score(), TOLERANCE, "score");
        assertClose("deconv W", expected.getGradientFor("0_W"), actual.getGradientFor("0_W"), TOLERANCE);
        assertClose("deconv b", expected.getGradientFor("0_b"), actual.getGradientFor("0_b"), TOLERANCE);
        assertClose(
                "dense W (transposed)",
                expected.getGradientFor("6_W").transpose(),
                actual.getGradientFor("5_W"),
                TOLERANCE);
        assertClose("dense b", expected.getGradientFor("6_b"), actual.getGradientFor("5_b"), TOLERANCE);
        for (String p : new String[] {"gamma", "beta"}) {
            assertClose(
                    "deconv BN " + p, expected.getGradientFor("1_" + p), actual.getGradientFor("0_" + p), TOLERANCE);
            assertClose("dense BN " + p, expected.getGradientFor("7_" + p), actual.getGradientFor("5_" + p), TOLERANCE);
        }
        for (int step = 0; step < 3; step++) {
            original.fit(input(), labels());
            converted.fit(input(), labels());
        }
        assertClose("deconv W after fit", original.getParam("0_W"), converted.getParam("0_W"), TOLERANCE);
        assertClose("dense W after fit", original.getParam("6_W").transpose(), converted.getParam("5_W"), TOLERANCE);
        String[][] pairs = {{"1", "0"}, {"7", "5"}};
        for (String[] pair : pairs) {
            for (String p : new String[] {"gamma", "beta", "mean"}) {
                assertClose(
                        p + " of " + pair[1] + " after fit",
                        original.getParam(pair[0] + "_" + p),
                        converted.getParam(pair[1] + "_" + p),
                        TOLERANCE);
            }
            INDArray log10Std = original.getParam(pair[0] + "_log10stdev");
            INDArray var = Transforms.pow(log10Std.mul(0).addi(10), log10Std.mul(2));
            assertClose(
                    "var of " + pair[1] + " after fit",
                    var,
                    converted.getParam(pair[1] + "_var"),
                    RUNNING_VAR_TOLERANCE);
        }
        assertClose("output layer after fit", original.getParam("11_W"), converted.getParam("9_W"), TOLERANCE);
    }

    private static Gradient gradient(MultiLayerNetwork net) {
        net.setInput(input());
        net.setLabels(labels());
        net.computeGradientAndScore();
        return net.gradient();
    }

    private static INDArray input() {
        return Nd4j.rand(11, INPUT_SHAPE).castTo(DataType.DOUBLE).subi(0.5).muli(2);
    }

    private static INDArray labels() {
        INDArray y = Nd4j.zeros(DataType.DOUBLE, INPUT_SHAPE[0], CLASSES);
        for (int i = 0; i < INPUT_SHAPE[0]; i++) {
            y.putScalar(i, i % CLASSES, 1.0);
        }
        return y;
    }
}
