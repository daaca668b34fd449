package org.convbn.dl4j;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.convbn.core.Mode;
import org.convbn.nd4j.NonFiniteTensorException;
import org.deeplearning4j.nn.conf.ConvolutionMode;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.GlobalPoolingLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.conf.layers.PoolingType;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.lossfunctions.LossFunctions;

/** Bad settings and inputs get exceptions that name the argument, the expected and the actual value. */
class Dl4jValidationTest {

    private static void fails(Class<? extends Throwable> type, Executable e, String... fragments) {
        Throwable t = assertThrows(type, e);
        for (String f : fragments) {
            assertTrue(t.getMessage().contains(f), "message \"" + t.getMessage() + "\" lacks \"" + f + "\"");
        }
    }

    @Test
    void builderRejectsBadSettings() {
        fails(
                IllegalArgumentException.class,
                () -> new ConvBNLayer.Builder().kernelSize(0, 3).build(),
                "kernelSize",
                ">= 1",
                "[0, 3]");
        fails(
                IllegalArgumentException.class,
                () -> new ConvBNLayer.Builder().padding(-1, 0).build(),
                "padding",
                ">= 0");
        fails(
                IllegalArgumentException.class,
                () -> new ConvBNLayer.Builder()
                        .convolutionMode(ConvolutionMode.Causal)
                        .build(),
                "convolutionMode",
                "Causal");
        fails(
                IllegalArgumentException.class,
                () -> new ConvBNLayer.Builder().eps(0).build(),
                "eps",
                "> 0");
        fails(
                IllegalArgumentException.class,
                () -> new ConvBNLayer.Builder().momentum(1.5).build(),
                "momentum");
        fails(
                IllegalArgumentException.class,
                () -> new ConvBNLayer.Builder()
                        .mode(Mode.DEPLOY)
                        .hasBias(false)
                        .affine(false)
                        .build(),
                "DEPLOY",
                "hasBias=false",
                "affine=false");
        fails(
                IllegalArgumentException.class,
                () -> new ConvBNLayer.Builder().activation(Activation.RELU).build(),
                "activation",
                "identity");
    }

    private static MultiLayerNetwork network(Mode mode) {
        MultiLayerConfiguration conf = new NeuralNetConfiguration.Builder()
                .dataType(DataType.FLOAT)
                .list()
                .layer(new ConvBNLayer.Builder().nOut(4).mode(mode).build())
                .layer(new GlobalPoolingLayer(PoolingType.AVG))
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MSE)
                        .nOut(2)
                        .activation(Activation.IDENTITY)
                        .build())
                .setInputType(InputType.convolutional(6, 6, 3))
                .build();
        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        return net;
    }

    @Test
    void badInputsAreNamed() {
        MultiLayerNetwork net = network(Mode.TUNE);
        ConvBNRuntimeLayer layer = (ConvBNRuntimeLayer) net.getLayer(0);
        LayerWorkspaceMgr ws = LayerWorkspaceMgr.noWorkspaces();
        fails(
                IllegalArgumentException.class,
                () -> layer.activate(Nd4j.rand(DataType.FLOAT, 2, 5, 6, 6), true, ws),
                "x",
                "3",
                "5");
        fails(
                IllegalArgumentException.class,
                () -> layer.activate(Nd4j.rand(DataType.FLOAT, 2, 3, 6), true, ws),
                "input",
                "rank 4",
                "[2, 3, 6]");
        fails(
                IllegalArgumentException.class,
                () -> layer.activate(Nd4j.rand(DataType.FLOAT, 2, 3, 2, 2), true, ws),
                "x");
        fails(
                IllegalStateException.class,
                () -> layer.backpropGradient(Nd4j.rand(DataType.FLOAT, 2, 4, 4, 4), ws),
                "backpropGradient",
                "forward");
    }

    @Test
    void corruptStatisticsAreNamed() {
        MultiLayerNetwork net = network(Mode.TUNE);
        ConvBNRuntimeLayer layer = (ConvBNRuntimeLayer) net.getLayer(0);
        layer.getParam(ConvBNParamInitializer.VAR_KEY).putScalar(1, -0.5);
        fails(
                IllegalArgumentException.class,
                () -> net.output(Nd4j.rand(DataType.FLOAT, 2, 3, 6, 6)),
                "bn.running_var",
                "-0.5");
        fails(IllegalArgumentException.class, () -> layer.setMode(Mode.DEPLOY), "bn.running_var");
        layer.getParam(ConvBNParamInitializer.VAR_KEY).putScalar(1, 1.0);
        layer.getParam(ConvBNParamInitializer.GAMMA_KEY).putScalar(2, Double.NaN);
        String name = layer.conf().getLayer().getLayerName();
        fails(
                NonFiniteTensorException.class,
                () -> layer.setMode(Mode.DEPLOY),
                "layer \"" + name
                        + "\" parameter gamma (bn.weight): expected finite values, got NaN at flat index 2 of shape [4]");
        fails(
                NonFiniteTensorException.class,
                () -> net.output(Nd4j.rand(DataType.FLOAT, 2, 3, 6, 6)),
                "layer \"" + name + "\" parameter gamma (bn.weight): expected finite values, got NaN");
        layer.getParam(ConvBNParamInitializer.GAMMA_KEY).putScalar(2, 1.0);
        layer.getParam(ConvBNParamInitializer.WEIGHT_KEY).putScalar(5, Double.POSITIVE_INFINITY);
        fails(
                NonFiniteTensorException.class,
                () -> layer.setMode(Mode.DEPLOY),
                "layer \"" + name
                        + "\" parameter W (conv.weight): expected finite values, got Infinity at flat index 5");
    }
}
