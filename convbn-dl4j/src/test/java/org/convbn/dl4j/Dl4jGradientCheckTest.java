package org.convbn.dl4j;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.convbn.core.Mode;
import org.deeplearning4j.gradientcheck.GradientCheckUtil;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.ConvolutionMode;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.WorkspaceMode;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.ActivationLayer;
import org.deeplearning4j.nn.conf.layers.GlobalPoolingLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.conf.layers.PoolingType;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.weights.WeightInit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.NoOp;
import org.nd4j.linalg.lossfunctions.LossFunctions;

/**
 * DL4J's own GradientCheckUtil (central differences in float64) on networks of ConvBN layers, in every mode. The
 * running statistics are excluded: in TRAIN their "gradient" is the running update handed to the NoOp updater
 * (DL4J's BatchNormalization does the same), elsewhere they are frozen.
 */
class Dl4jGradientCheckTest {
    /** DL4J's central-difference step. */
    private static final double EPSILON = 1e-6;
    /** Relative error bound: float64 central differences with step 1e-6 are accurate to about 1e-8 here. */
    private static final double MAX_RELATIVE_ERROR = 1e-5;
    /** Absolute error below which a mismatch is rounding (entries whose gradient is ~0). */
    private static final double MIN_ABSOLUTE_ERROR = 1e-9;

    private static DataType previousType;
    private static DataType previousFloatType;

    @BeforeAll
    static void doublePrecision() {
        previousType = Nd4j.dataType();
        previousFloatType = Nd4j.defaultFloatingPointType();
        Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
    }

    @AfterAll
    static void restorePrecision() {
        Nd4j.setDefaultDataTypes(previousType, previousFloatType);
    }

    /** conv-bn (3x3, stride 2, pad 1) -> tanh -> conv-bn (2x2 Same, dilation 2, no conv bias) -> avg pool -> softmax. */
    @ParameterizedTest
    @EnumSource(Mode.class)
    void multiLayerNetworkPassesGradientCheckUtil(Mode mode) {
        MultiLayerConfiguration conf = new NeuralNetConfiguration.Builder()
                .seed(3)
                .dataType(DataType.DOUBLE)
                .updater(new NoOp())
                .weightInit(WeightInit.XAVIER)
                .list()
                .layer(new ConvBNLayer.Builder()
                        .kernelSize(3, 3)
                        .stride(2, 2)
                        .padding(1, 1)
                        .nOut(4)
                        .eps(1e-3)
                        .mode(mode)
                        .build())
                .layer(new ActivationLayer(Activation.TANH))
                .layer(new ConvBNLayer.Builder()
                        .kernelSize(2, 2)
                        .dilation(2, 2)
                        .convolutionMode(ConvolutionMode.Same)
                        .hasBias(false)
                        .nOut(3)
                        .mode(mode)
                        .build())
                .layer(new GlobalPoolingLayer(PoolingType.AVG))
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT)
                        .nOut(3)
                        .activation(Activation.SOFTMAX)
                        .build())
                .setInputType(InputType.convolutional(7, 6, 2))
                .build();
        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        randomizeConvBN(net.getLayers(), 11);
        INDArray x = Nd4j.rand(5, new long[] {3, 2, 7, 6}).subi(0.5);
        INDArray y = Nd4j.zeros(DataType.DOUBLE, 3, 3);
        for (int i = 0; i < 3; i++) {
            y.putScalar(i, i, 1.0);
        }
        boolean ok = GradientCheckUtil.checkGradients(new GradientCheckUtil.MLNConfig()
                .net(net)
                .input(x)
                .labels(y)
                .epsilon(EPSILON)
                .maxRelError(MAX_RELATIVE_ERROR)
                .minAbsoluteError(MIN_ABSOLUTE_ERROR)
                .exitOnFirstError(false)
                .print(GradientCheckUtil.PrintMode.FAILURES_ONLY)
                .excludeParams(runningStatistics(net.paramTable().keySet())));
        assertTrue(ok, "GradientCheckUtil failed in " + mode);
    }

    /** The residual graph of {@link Dl4jFixtures}, converted, in TRAIN, EVAL and TUNE. */
    @ParameterizedTest
    @EnumSource(
            value = Mode.class,
            names = {"TRAIN", "EVAL", "TUNE"})
    void convertedGraphPassesGradientCheckUtil(Mode mode) {
        ComputationGraph original =
                Dl4jFixtures.residualGraph(DataType.DOUBLE, new NoOp(), false, WorkspaceMode.ENABLED, 5);
        ComputationGraph graph =
                ConvBNConverter.builder().mode(mode).build().apply(original).network();
        boolean ok = GradientCheckUtil.checkGradients(new GradientCheckUtil.GraphConfig()
                .net(graph)
                .inputs(new INDArray[] {Dl4jFixtures.input(DataType.DOUBLE, 8)})
                .labels(new INDArray[] {Dl4jFixtures.labels(DataType.DOUBLE, 9)})
                .epsilon(EPSILON)
                .maxRelError(MAX_RELATIVE_ERROR)
                .minAbsoluteError(MIN_ABSOLUTE_ERROR)
                .exitOnFirstError(false)
                .print(GradientCheckUtil.PrintMode.FAILURES_ONLY)
                .excludeParams(runningStatistics(graph.paramTable().keySet())));
        assertTrue(ok, "GradientCheckUtil failed in " + mode);
    }

    /** The running statistics among a network's parameter names ("layer_param"; only ConvBN layers have them). */
    private static Set<String> runningStatistics(Set<String> paramNames) {
        Set<String> names = new HashSet<>();
        for (String n : paramNames) {
            if (n.endsWith("_" + ConvBNParamInitializer.MEAN_KEY) || n.endsWith("_" + ConvBNParamInitializer.VAR_KEY)) {
                names.add(n);
            }
        }
        return names;
    }

    /** Trained-looking gamma, beta, running statistics and conv bias; DEPLOY layers fold them in place. */
    static void randomizeConvBN(Layer[] layers, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        for (Layer l : layers) {
            if (!(l instanceof ConvBNRuntimeLayer c)) {
                continue;
            }
            Mode mode = c.mode();
            if (mode == Mode.DEPLOY) {
                c.setMode(Mode.EVAL);
            }
            Map<String, INDArray> p = c.paramTable();
            if (p.containsKey(ConvBNParamInitializer.BIAS_KEY)) {
                Dl4jFixtures.fill(p.get(ConvBNParamInitializer.BIAS_KEY), rng, -0.5, 0.5);
            }
            Dl4jFixtures.fill(p.get(ConvBNParamInitializer.GAMMA_KEY), rng, 0.5, 1.5);
            Dl4jFixtures.fill(p.get(ConvBNParamInitializer.BETA_KEY), rng, -0.5, 0.5);
            Dl4jFixtures.fill(p.get(ConvBNParamInitializer.MEAN_KEY), rng, -0.5, 0.5);
            Dl4jFixtures.fill(p.get(ConvBNParamInitializer.VAR_KEY), rng, 0.5, 2.0);
            c.setMode(mode);
        }
    }
}
