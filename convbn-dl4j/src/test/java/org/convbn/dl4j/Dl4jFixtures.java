package org.convbn.dl4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Map;
import java.util.SplittableRandom;
import org.convbn.core.Mode;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.ConvolutionMode;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.WorkspaceMode;
import org.deeplearning4j.nn.conf.graph.ElementWiseVertex;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.ActivationLayer;
import org.deeplearning4j.nn.conf.layers.BaseLayer;
import org.deeplearning4j.nn.conf.layers.BatchNormalization;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.conf.layers.DepthwiseConvolution2D;
import org.deeplearning4j.nn.conf.layers.GlobalPoolingLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.conf.layers.PoolingType;
import org.deeplearning4j.nn.conf.layers.misc.FrozenLayerWithBackprop;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.params.BatchNormalizationParamInitializer;
import org.deeplearning4j.nn.weights.WeightInit;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.lossfunctions.LossFunctions;
import org.nd4j.linalg.ops.transforms.Transforms;

/** Small DL4J networks with non-trivial trained-looking parameters, and comparisons. */
public final class Dl4jFixtures {
    private Dl4jFixtures() {}

    /** Input of the residual graph: [N, 3, 7, 6]. */
    public static final long[] INPUT_SHAPE = {4, 3, 7, 6};

    public static final int CLASSES = 3;

    /**
     * in -> conv1 (3x3, pad 1) -> bn1 -> tanh -> conv2 (3x3 Same, stride 2) -> bn2 --+--> tanh -> avg pool -> softmax
     * in -> conv3 (1x1, stride 2, no bias) -> bn3 -----------------------------------+ (add)
     *
     * @param frozenBn whether each BN is wrapped in FrozenLayerWithBackprop (DL4J's fine-tuning with frozen BN)
     */
    public static ComputationGraph residualGraph(
            DataType type, IUpdater updater, boolean frozenBn, WorkspaceMode ws, long seed) {
        return residualGraph(type, updater, frozenBn ? Norm.FROZEN_BN : Norm.BN, ws, seed);
    }

    /** What sits after each conv of the residual graph. */
    enum Norm {
        /** DL4J's BatchNormalization. */
        BN,
        /** BatchNormalization in FrozenLayerWithBackprop. */
        FROZEN_BN,
        /**
         * A frozen BN written as DL4J layers whose backward is exact: a 1x1 depthwise conv (per-channel scale s and
         * shift beta - s mean) in FrozenLayerWithBackprop. Parameters come from {@link #affineOracleOf}.
         */
        AFFINE
    }

    static ComputationGraph residualGraph(DataType type, IUpdater updater, Norm norm, WorkspaceMode ws, long seed) {
        ComputationGraphConfiguration conf = new NeuralNetConfiguration.Builder()
                .seed(seed)
                .dataType(type)
                .updater(updater)
                .weightInit(WeightInit.XAVIER)
                .l2(1e-3)
                .trainingWorkspaceMode(ws)
                .inferenceWorkspaceMode(ws)
                .graphBuilder()
                .addInputs("in")
                // Declared in DL4J's topological order: GradientCheckUtil names parameters by declaration order
                // but the flat parameter vector follows the topological order.
                .addLayer(
                        "conv1",
                        new ConvolutionLayer.Builder(3, 3)
                                .padding(1, 1)
                                .nOut(4)
                                .activation(Activation.IDENTITY)
                                .build(),
                        "in")
                .addLayer(
                        "conv3",
                        new ConvolutionLayer.Builder(1, 1)
                                .stride(2, 2)
                                .nOut(5)
                                .hasBias(false)
                                .activation(Activation.IDENTITY)
                                .build(),
                        "in")
                .addLayer("bn1", norm(norm), "conv1")
                .addLayer("bn3", norm(norm), "conv3")
                .addLayer("act1", new ActivationLayer(Activation.TANH), "bn1")
                .addLayer(
                        "conv2",
                        new ConvolutionLayer.Builder(3, 3)
                                .stride(2, 2)
                                .convolutionMode(ConvolutionMode.Same)
                                .nOut(5)
                                .activation(Activation.IDENTITY)
                                .build(),
                        "act1")
                .addLayer("bn2", norm(norm), "conv2")
                .addVertex("add", new ElementWiseVertex(ElementWiseVertex.Op.Add), "bn2", "bn3")
                .addLayer("act2", new ActivationLayer(Activation.TANH), "add")
                .addLayer("pool", new GlobalPoolingLayer(PoolingType.AVG), "act2")
                .addLayer(
                        "out",
                        new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT)
                                .nOut(CLASSES)
                                .activation(Activation.SOFTMAX)
                                .build(),
                        "pool")
                .setOutputs("out")
                .setInputTypes(InputType.convolutional(INPUT_SHAPE[2], INPUT_SHAPE[3], INPUT_SHAPE[1]))
                .build();
        ComputationGraph graph = new ComputationGraph(conf);
        graph.init();
        randomizeBatchNormAndBiases(graph.getLayers(), seed);
        return graph;
    }

    /**
     * The residual graph (BN, workspaces on) converted to ConvBN layers in {@code mode}: the network the
     * multi-worker and multi-thread tests train.
     */
    public static ComputationGraph converted(Mode mode, DataType type, IUpdater updater, long seed) {
        ComputationGraph original = residualGraph(type, updater, false, WorkspaceMode.ENABLED, seed);
        return ConvBNConverter.builder().mode(mode).build().apply(original).network();
    }

    /** Asserts that two networks hold the same parameters and updater state (see {@link #assertClose}). */
    public static void assertSameTrainingState(
            String what, ComputationGraph expected, ComputationGraph actual, double tolerance) {
        assertClose(what + " parameters", expected.params(), actual.params(), tolerance);
        assertClose(
                what + " updater state",
                expected.getUpdater().getStateViewArray(),
                actual.getUpdater().getStateViewArray(),
                tolerance);
    }

    /** eps of every BN. */
    static final double EPS = 1e-3;

    private static org.deeplearning4j.nn.conf.layers.Layer norm(Norm norm) {
        if (norm == Norm.AFFINE) {
            return new FrozenLayerWithBackprop(new DepthwiseConvolution2D.Builder(1, 1)
                    .depthMultiplier(1)
                    .hasBias(true)
                    .activation(Activation.IDENTITY)
                    .build());
        }
        BatchNormalization bn =
                new BatchNormalization.Builder().decay(0.8).eps(EPS).build();
        return norm == Norm.FROZEN_BN ? new FrozenLayerWithBackprop(bn) : bn;
    }

    /**
     * The residual graph with each BN of {@code bnGraph} replaced by its exact frozen affine ({@link Norm#AFFINE}),
     * every other parameter copied.
     */
    static ComputationGraph affineOracleOf(ComputationGraph bnGraph, IUpdater updater, long seed) {
        ComputationGraph oracle =
                residualGraph(bnGraph.getConfiguration().getDataType(), updater, Norm.AFFINE, WorkspaceMode.NONE, seed);
        for (Layer target : oracle.getLayers()) {
            String name = target.conf().getLayer().getLayerName();
            Map<String, INDArray> src = bnGraph.getLayer(name).paramTable();
            if (!src.containsKey(BatchNormalizationParamInitializer.GAMMA)) {
                if (target.numParams() > 0) {
                    target.params().assign(bnGraph.getLayer(name).params());
                }
                continue;
            }
            INDArray log10Std = src.get(BatchNormalizationParamInitializer.GLOBAL_LOG_STD);
            INDArray varPlusEps =
                    Transforms.pow(log10Std.mul(0).addi(10), log10Std.mul(2)).addi(EPS);
            INDArray s = src.get(BatchNormalizationParamInitializer.GAMMA).div(Transforms.sqrt(varPlusEps));
            INDArray shift = src.get(BatchNormalizationParamInitializer.BETA)
                    .sub(s.mul(src.get(BatchNormalizationParamInitializer.GLOBAL_MEAN)));
            Map<String, INDArray> dst = target.paramTable();
            dst.get("W").assign(s.reshape(dst.get("W").shape()));
            dst.get("b").assign(shift.reshape(dst.get("b").shape()));
            // DL4J still applies the global l2 to a FrozenLayerWithBackprop's parameters; a frozen BN has none.
            BaseLayer affine = (BaseLayer) ((org.deeplearning4j.nn.layers.FrozenLayerWithBackprop) target)
                    .getUnderlying()
                    .conf()
                    .getLayer();
            affine.setRegularization(new ArrayList<>());
            affine.setRegularizationBias(new ArrayList<>());
        }
        return oracle;
    }

    /**
     * Trained-looking BN tensors (gamma in [0.5, 1.5], beta and mean in [-0.5, 0.5], variance in [0.5, 2] stored
     * as DL4J stores it) and conv biases in [-0.5, 0.5].
     */
    static void randomizeBatchNormAndBiases(Layer[] layers, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        for (Layer l : layers) {
            Map<String, INDArray> p = l.paramTable();
            if (l.conf().getLayer().getClass() == ConvolutionLayer.class && p.containsKey("b")) {
                fill(p.get("b"), rng, -0.5, 0.5);
            }
            if (p.containsKey(BatchNormalizationParamInitializer.GAMMA)) {
                fill(p.get(BatchNormalizationParamInitializer.GAMMA), rng, 0.5, 1.5);
                fill(p.get(BatchNormalizationParamInitializer.BETA), rng, -0.5, 0.5);
                fill(p.get(BatchNormalizationParamInitializer.GLOBAL_MEAN), rng, -0.5, 0.5);
                INDArray log10Std = p.get(BatchNormalizationParamInitializer.GLOBAL_LOG_STD);
                for (long i = 0; i < log10Std.length(); i++) {
                    log10Std.putScalar(i, Math.log10(Math.sqrt(0.5 + 1.5 * rng.nextDouble())));
                }
            }
        }
    }

    /**
     * Redraws every weight W as N(0, 1/fanIn): the zoo's N(0, 0.5) init overflows float32 through ResNet50's 50
     * layers when BN normalises with untrained statistics, as frozen or inference-mode BN does.
     */
    static void heScaleWeights(Layer[] layers, long seed) {
        for (Layer l : layers) {
            INDArray w = l.paramTable().get("W");
            if (w != null) {
                long fanIn = w.length() / (w.rank() == 4 ? w.size(0) : w.size(1));
                w.assign(Nd4j.randn(seed++, w.shape()).castTo(w.dataType()).muli(Math.sqrt(1.0 / fanIn)));
            }
        }
    }

    static void fill(INDArray a, SplittableRandom rng, double lo, double hi) {
        for (long i = 0; i < a.length(); i++) {
            a.putScalar(i, lo + (hi - lo) * rng.nextDouble());
        }
    }

    public static INDArray input(DataType type, long seed) {
        return Nd4j.rand(seed, INPUT_SHAPE).castTo(type).subi(0.5).muli(2);
    }

    public static INDArray labels(DataType type, long seed) {
        INDArray y = Nd4j.zeros(type, INPUT_SHAPE[0], CLASSES);
        SplittableRandom rng = new SplittableRandom(seed);
        for (int i = 0; i < INPUT_SHAPE[0]; i++) {
            y.putScalar(i, rng.nextInt(CLASSES), 1.0);
        }
        return y;
    }

    /**
     * Asserts {@code max|expected - actual| <= tolerance * max(1, max|expected|)}.
     */
    public static void assertClose(String what, INDArray expected, INDArray actual, double tolerance) {
        assertArrayEquals(expected.shape(), actual.reshape(expected.shape()).shape(), what + ": shape");
        INDArray e = expected.castTo(DataType.DOUBLE);
        INDArray a = actual.reshape(expected.shape()).castTo(DataType.DOUBLE);
        double scale = Math.max(1.0, e.amaxNumber().doubleValue());
        double diff = e.sub(a).amaxNumber().doubleValue();
        assertTrue(
                diff <= tolerance * scale, what + ": max difference " + diff + " exceeds " + tolerance + " x " + scale);
    }
}
