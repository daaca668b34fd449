package org.convbn.dl4j;

import static org.convbn.dl4j.Dl4jFixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.convbn.core.Mode;
import org.convbn.core.TuneFold;
import org.convbn.nd4j.ConvBNBlock;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.ConvolutionMode;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.WorkspaceMode;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.GlobalPoolingLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.conf.layers.PoolingType;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.util.ModelSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.Nesterovs;
import org.nd4j.linalg.learning.regularization.L2Regularization;
import org.nd4j.linalg.lossfunctions.LossFunctions;

/** Mode switches of a converted network in place, and save/restore with DL4J's ModelSerializer. */
class ModeSwitchAndSerializationTest {
    /** float64 fold and unfold: W' = s W, then W = W' / s, a few ulps each. */
    private static final double TOLERANCE = 1e-12;

    @TempDir
    Path dir;

    private static ComputationGraph converted(Mode mode) {
        ComputationGraph original =
                Dl4jFixtures.residualGraph(DataType.DOUBLE, new Nesterovs(0.01, 0.9), false, WorkspaceMode.ENABLED, 31);
        return ConvBNConverter.builder().mode(mode).build().apply(original).network();
    }

    private static INDArray[] x() {
        return new INDArray[] {Dl4jFixtures.input(DataType.DOUBLE, 4)};
    }

    private static INDArray[] y() {
        return new INDArray[] {Dl4jFixtures.labels(DataType.DOUBLE, 5)};
    }

    @Test
    void switchingModesKeepsTheFunctionAndRestoresTheParameters() {
        ComputationGraph g = converted(Mode.TUNE);
        INDArray out = g.outputSingle(x());
        INDArray w = g.getParam("conv3_W").dup();
        INDArray beta = g.getParam("conv3_beta").dup();
        for (Mode mode : new Mode[] {Mode.DEPLOY, Mode.EVAL, Mode.DEPLOY, Mode.TRAIN, Mode.TUNE}) {
            assertEquals(3, ConvBNLayers.setMode(g, mode));
            assertClose(mode + " output", out, g.outputSingle(x()), TOLERANCE);
            if (mode == Mode.DEPLOY) {
                // conv3 has no conv bias: W holds W', beta holds b'.
                assertTrue(g.getParam("conv3_W").sub(w).amaxNumber().doubleValue() > 1e-3, "W holds W' in DEPLOY");
                assertTrue(
                        g.getParam("conv3_beta").sub(beta).amaxNumber().doubleValue() > 1e-3,
                        "beta holds b' in DEPLOY");
            } else {
                assertClose(mode + " W", w, g.getParam("conv3_W"), TOLERANCE);
                assertClose(mode + " beta", beta, g.getParam("conv3_beta"), TOLERANCE);
            }
        }
    }

    /**
     * The layer validates its parameters and makes its block (and its kernels' primitives) once, not per forward:
     * the same block runs every forward and fit in a mode, a new one after a mode change or new parameter views.
     */
    @Test
    void theBlockIsMadeOnceAndRemadeOnlyWhenTheModeOrTheViewsChange() {
        for (Mode mode : new Mode[] {Mode.TRAIN, Mode.EVAL, Mode.TUNE, Mode.DEPLOY}) {
            ComputationGraph g = converted(mode);
            ConvBNRuntimeLayer layer = (ConvBNRuntimeLayer) g.getLayer("conv3");
            g.fit(x(), y());
            ConvBNBlock first = layer.currentBlock();
            assertTrue(first != null, mode + ": a block after the first fit");
            g.fit(x(), y());
            assertTrue(first == layer.currentBlock(), mode + ": the same block over fits");
            if (mode != Mode.TRAIN) { // TRAIN's inference forward runs TUNE: a block of its own
                g.outputSingle(x());
                assertTrue(first == layer.currentBlock(), mode + ": the same block for an output");
            }
            ConvBNLayers.setMode(g, mode == Mode.TUNE ? Mode.EVAL : Mode.TUNE);
            assertTrue(layer.currentBlock() == null, mode + ": a mode change drops the block");
            g.fit(x(), y());
            ConvBNBlock afterSwitch = layer.currentBlock();
            layer.setParamTable(new LinkedHashMap<>(layer.paramTable()));
            g.outputSingle(x());
            assertTrue(afterSwitch == layer.currentBlock(), mode + ": the same views keep the block");
            Map<String, INDArray> copies = new LinkedHashMap<>();
            layer.paramTable().forEach((k, v) -> copies.put(k, v.dup()));
            layer.setParamTable(copies);
            g.outputSingle(x());
            assertTrue(afterSwitch != layer.currentBlock(), mode + ": new parameter views make a new block");
        }
    }

    /** Trained in DEPLOY (W', b' move), the unfold still gives the function DEPLOY computes. */
    @Test
    void leavingDeployAfterTrainingKeepsItsFunction() {
        ComputationGraph g = converted(Mode.DEPLOY);
        for (int i = 0; i < 3; i++) {
            g.fit(x(), y());
        }
        INDArray out = g.outputSingle(x());
        ConvBNLayers.setMode(g, Mode.TUNE);
        assertClose("TUNE after DEPLOY training", out, g.outputSingle(x()), TOLERANCE);
    }

    /** Parameters, updater state, configuration (mode included) and the next fit step survive a round trip. */
    @Test
    void modelSerializerRoundTripsAConvertedGraph() throws IOException {
        for (Mode mode : Mode.values()) {
            ComputationGraph g = converted(mode);
            g.fit(x(), y());
            File file = dir.resolve("graph-" + mode + ".zip").toFile();
            ModelSerializer.writeModel(g, file, true);
            ComputationGraph restored = ModelSerializer.restoreComputationGraph(file, true);
            assertEquals(g.getConfiguration(), restored.getConfiguration(), mode + " configuration");
            assertEquals(mode, ConvBNLayers.of(restored).get(0).mode());
            assertClose(mode + " params", g.params(), restored.params(), 0);
            assertClose(
                    mode + " updater state",
                    g.getUpdater().getStateViewArray(),
                    restored.getUpdater().getStateViewArray(),
                    0);
            assertClose(mode + " output", g.outputSingle(x()), restored.outputSingle(x()), 0);
            g.fit(x(), y());
            restored.fit(x(), y());
            assertClose(mode + " params after another fit", g.params(), restored.params(), TOLERANCE);
        }
    }

    /** Every ConvBNLayer setting survives JSON, in a MultiLayerNetwork too. */
    @Test
    void everySettingSurvivesJson() throws IOException {
        MultiLayerConfiguration conf = new NeuralNetConfiguration.Builder()
                .dataType(DataType.DOUBLE)
                .updater(new Adam(1e-3))
                .list()
                .layer(new ConvBNLayer.Builder()
                        .kernelSize(3, 2)
                        .stride(2, 1)
                        .padding(1, 0)
                        .dilation(1, 2)
                        .convolutionMode(ConvolutionMode.Strict)
                        .hasBias(false)
                        .affine(true)
                        .eps(1e-4)
                        .momentum(0.3)
                        .unbiasedRunningVar(false)
                        .mode(Mode.EVAL)
                        .tuneFold(TuneFold.RECOMPUTE)
                        .normUpdater(new Nesterovs(0.1, 0.5))
                        .normFrozen(true)
                        .normRegularization(List.of(new L2Regularization(1e-4)))
                        .nOut(4)
                        .build())
                .layer(new GlobalPoolingLayer(PoolingType.MAX))
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MSE)
                        .nOut(2)
                        .activation(Activation.IDENTITY)
                        .build())
                .setInputType(InputType.convolutional(9, 8, 3))
                .build();
        MultiLayerConfiguration back = MultiLayerConfiguration.fromJson(conf.toJson());
        assertEquals(conf, back);
        ConvBNLayer l = (ConvBNLayer) back.getConf(0).getLayer();
        assertEquals(TuneFold.RECOMPUTE, l.getTuneFold());
        assertEquals(3, l.getNIn());
        MultiLayerNetwork net = new MultiLayerNetwork(back);
        net.init();
        File file = dir.resolve("mln.zip").toFile();
        ModelSerializer.writeModel(net, file, true);
        MultiLayerNetwork restored = ModelSerializer.restoreMultiLayerNetwork(file, true);
        assertEquals(net.getLayerWiseConfigurations(), restored.getLayerWiseConfigurations());
        assertClose("params", net.params(), restored.params(), 0);
        ComputationGraphConfiguration graphConf = converted(Mode.TUNE).getConfiguration();
        assertEquals(graphConf, ComputationGraphConfiguration.fromJson(graphConf.toJson()));
    }
}
