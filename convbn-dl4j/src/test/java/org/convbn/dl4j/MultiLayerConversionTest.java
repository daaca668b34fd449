package org.convbn.dl4j;

import static org.convbn.dl4j.Dl4jFixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.convbn.core.Mode;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.ActivationLayer;
import org.deeplearning4j.nn.conf.layers.BatchNormalization;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.conf.layers.DepthwiseConvolution2D;
import org.deeplearning4j.nn.conf.layers.GlobalPoolingLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.conf.layers.PoolingType;
import org.deeplearning4j.nn.conf.layers.misc.FrozenLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.weights.WeightInit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;

/**
 * A MultiLayerNetwork mixing pairs that fuse with patterns that must be left alone, each for its own reason; the
 * converted network computes the same function in every mode.
 */
class MultiLayerConversionTest {
    /** float64; see {@link ConverterEquivalenceTest#TOLERANCE}. */
    private static final double TOLERANCE = 1e-11;

    private static MultiLayerNetwork original() {
        MultiLayerConfiguration conf = new NeuralNetConfiguration.Builder()
                .seed(21)
                .dataType(DataType.DOUBLE)
                .updater(new Adam(1e-3))
                .weightInit(WeightInit.XAVIER)
                .list()
                .layer(new FrozenLayer(conv(3, 4).padding(1, 1).build())) // 0 fused, frozen
                .layer(new FrozenLayer(new BatchNormalization())) // 1
                .layer(conv(1, 4).build()) // 2 BN frozen without backprop
                .layer(new FrozenLayer(new BatchNormalization())) // 3
                .layer(conv(3, 4).padding(1, 1).activation(Activation.RELU).build()) // 4 conv has an activation
                .layer(new BatchNormalization()) // 5
                .layer(new DepthwiseConvolution2D.Builder(3, 3)
                        .padding(1, 1)
                        .depthMultiplier(1)
                        .activation(Activation.IDENTITY)
                        .build()) // 6 not a plain conv
                .layer(new BatchNormalization()) // 7
                .layer(conv(3, 5).stride(2, 2).build()) // 8 fused, trainable
                .layer(new BatchNormalization()) // 9
                .layer(conv(1, 5).build()) // 10 dropout before BN
                .layer(new BatchNormalization.Builder().dropOut(0.5).build()) // 11
                .layer(new ActivationLayer(Activation.TANH))
                .layer(new GlobalPoolingLayer(PoolingType.AVG))
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT)
                        .nOut(3)
                        .activation(Activation.SOFTMAX)
                        .build())
                .setInputType(InputType.convolutional(8, 7, 2))
                .build();
        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        Dl4jFixtures.randomizeBatchNormAndBiases(net.getLayers(), 6);
        return net;
    }

    private static ConvolutionLayer.Builder conv(int k, int out) {
        return new ConvolutionLayer.Builder(k, k).nOut(out).activation(Activation.IDENTITY);
    }

    @ParameterizedTest
    @EnumSource(Mode.class)
    void fusesWhatItCanAndSaysWhyItLeftTheRest(Mode mode) {
        MultiLayerNetwork original = original();
        ConvBNConverter.Conversion<MultiLayerNetwork> c =
                ConvBNConverter.builder().mode(mode).build().apply(original);
        ConversionReport r = c.report();
        assertEquals(
                List.of(
                        new ConversionReport.Converted("0", "1", "0", "FrozenLayer"),
                        new ConversionReport.Converted("8", "9", "7", "trainable")),
                r.converted(),
                r.toString());
        List<String> left =
                r.leftAlone().stream().map(l -> l.layer() + ": " + l.reason()).toList();
        assertEquals(8, left.size(), r.toString());
        assertTrue(left.get(0).startsWith("2: conv is NONE and BatchNormalization is FROZEN"), left.get(0));
        assertTrue(left.get(1).startsWith("3: not preceded"), left.get(1));
        assertTrue(left.get(2).startsWith("4: its activation is relu"), left.get(2));
        assertTrue(left.get(4).startsWith("6: it is a DepthwiseConvolution2D"), left.get(4));
        assertTrue(left.get(6).startsWith("10: dropout between the conv and BatchNormalization"), left.get(6));

        MultiLayerNetwork converted = c.network();
        assertEquals(original.getnLayers() - 2, converted.getnLayers());
        assertInstanceOf(org.deeplearning4j.nn.layers.FrozenLayer.class, converted.getLayer(0));
        assertEquals(2, ConvBNLayers.of(converted).size());
        assertEquals(mode, ConvBNLayers.of(converted).get(1).mode());
        INDArray x = Nd4j.rand(3, new long[] {4, 2, 8, 7}).castTo(DataType.DOUBLE);
        assertClose(mode + " output", original.output(x), converted.output(x), TOLERANCE);
    }
}
