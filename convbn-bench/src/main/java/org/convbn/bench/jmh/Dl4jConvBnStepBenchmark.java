package org.convbn.bench.jmh;

import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.WorkspaceMode;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.BatchNormalization;
import org.deeplearning4j.nn.conf.layers.CnnLossLayer;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.conf.layers.misc.FrozenLayerWithBackprop;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Nesterovs;
import org.nd4j.linalg.lossfunctions.LossFunctions;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Setup;

/**
 * The peer: DL4J's own ConvolutionLayer followed by a BatchNormalization frozen as DL4J users fine-tune today
 * (FrozenLayerWithBackprop: running statistics, gradients flow through), one {@code fit} of a batch with an MSE
 * loss to zero on the block output, the same loss as {@link BlockStepBenchmark} up to DL4J's scaling, on the
 * same shapes.
 */
public class Dl4jConvBnStepBenchmark extends AbstractBenchmark {
    @Param({"LAYER1_3X3", "LAYER3_1X1"})
    public LayerShape shape;

    @Param("8")
    public int batch;

    private MultiLayerNetwork net;
    private INDArray x;
    private INDArray target;

    @Setup
    public void setUp() {
        Nd4j.getMemoryManager().togglePeriodicGc(false);
        MultiLayerConfiguration conf = new NeuralNetConfiguration.Builder()
                .seed(1)
                .dataType(DataType.FLOAT)
                .updater(new Nesterovs(1e-3, 0.9))
                // FrozenLayerWithBackprop(BatchNormalization) fails with workspaces on ("outdated workspace
                // pointer" in M2.1), so the peer runs without them.
                .trainingWorkspaceMode(WorkspaceMode.NONE)
                .inferenceWorkspaceMode(WorkspaceMode.NONE)
                .list()
                .layer(new ConvolutionLayer.Builder(shape.kernel, shape.kernel)
                        .stride(shape.stride, shape.stride)
                        .padding(shape.kernel / 2, shape.kernel / 2)
                        .nIn(shape.in)
                        .nOut(shape.out)
                        .hasBias(false)
                        .activation(Activation.IDENTITY)
                        .build())
                .layer(new FrozenLayerWithBackprop(
                        new BatchNormalization.Builder().nOut(shape.out).build()))
                .layer(new CnnLossLayer.Builder(LossFunctions.LossFunction.MSE)
                        .activation(Activation.IDENTITY)
                        .build())
                .setInputType(InputType.convolutional(shape.resolution, shape.resolution, shape.in))
                .build();
        net = new MultiLayerNetwork(conf);
        net.init();
        x = Nd4j.randn(DataType.FLOAT, shape.inputShape(batch));
        target = Nd4j.zeros(DataType.FLOAT, shape.config().conv().outputShape(x.shape())); // MSE to 0: mean(Z^2)
    }

    @Benchmark
    public double step() {
        net.fit(x, target);
        return net.score();
    }
}
