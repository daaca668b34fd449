package org.convbn.nd4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.convbn.core.BatchNormConfig;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.convbn.core.ConvTransposeConfig;
import org.convbn.core.LinearConfig;
import org.convbn.core.Mode;
import org.convbn.core.ParameterNames;
import org.convbn.core.RetainedBytes;
import org.convbn.core.TuneFold;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Layout;
import org.convbn.nd4j.kernel.Nd4jKernels;
import org.convbn.nd4j.kernel.PooledArena;
import org.convbn.testkit.conformance.ConfigGrid;
import org.convbn.testkit.conformance.RelativeError;
import org.convbn.testkit.reference.ReferenceConvBN;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The producers besides conv2d, ConvTranspose2d + BN and Linear + BatchNorm1d, held to what the conv2d block is:
 * every mode against the float64 reference (float64 and float32) and against finite differences, EVAL == TUNE,
 * exact retained bytes, bad input named; and the grouped transposed fold against the naive one.
 */
class ProducerKindsTest {
    /** Largest relative error per kind, per check and mode, printed after the class for the record. */
    private static final Map<String, Map<Mode, Double>> WORST = new TreeMap<>();
    /**
     * A naive fold must miss EVAL's output by at least this (relative): s spans [0.5, 1.5] / sqrt(1.5 + eps) ..
     * sqrt(0.5 + eps) in the random case, so scaling the wrong channels changes outputs by tens of percent.
     */
    static final double NAIVE_FOLD_MIN_ERROR = 1e-2;

    static Stream<ConfigGrid.Case> kinds() {
        return Stream.concat(ConfigGrid.transposed().stream(), ConfigGrid.linear().stream());
    }

    static Stream<Arguments> kindsAndTypes() {
        return kinds().flatMap(c -> Stream.of(Arguments.of(c, DataType.DOUBLE), Arguments.of(c, DataType.FLOAT)));
    }

    private static Map<Mode, Double> worst(String check, ConfigGrid.Case grid, DataType type) {
        String key = grid.config().producer().kind() + " " + check + " " + type;
        synchronized (WORST) {
            return WORST.computeIfAbsent(key, k -> Collections.synchronizedMap(new EnumMap<>(Mode.class)));
        }
    }

    @ParameterizedTest(name = "{1} {0}")
    @MethodSource("kindsAndTypes")
    void everyModeMatchesTheReference(ConfigGrid.Case grid, DataType type) {
        double tol = type == DataType.DOUBLE
                ? BackendVsReferenceTest.FLOAT64_TOLERANCE
                : BackendVsReferenceTest.FLOAT32_TOLERANCE;
        BackendVsReferenceTest.check(
                grid, type, new Nd4jKernels(type, Arena.direct()), Layout.NCHW, tol, worst("vs reference", grid, type));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("kinds")
    void everyModeMatchesFiniteDifferences(ConfigGrid.Case grid) {
        Nd4jGradientCheckTest.checkEveryMode(grid)
                .forEach((mode, err) ->
                        worst("vs finite differences", grid, DataType.DOUBLE).merge(mode, err, Math::max));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("kinds")
    void evalAndTuneGiveTheSameOutputAndGradients(ConfigGrid.Case grid) {
        EvalTuneEquivalenceTest.check(
                grid,
                DataType.DOUBLE,
                new Nd4jKernels(DataType.DOUBLE, Arena.direct()),
                EvalTuneEquivalenceTest.FLOAT64_TOLERANCE);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("kinds")
    void foldingIntoDeployAndBackRestoresTheParameters(ConfigGrid.Case grid) {
        Fixtures.Case c = Fixtures.random(grid.config(), grid.inputShape(), DataType.DOUBLE, 600);
        ConvBNParameters before = c.nd4j().copy();
        ConvBNBlock block = ConvBNBlock.of(c.config(), c.nd4j(), Mode.TUNE);
        block.setMode(Mode.DEPLOY);
        block.setMode(Mode.EVAL);
        before.trainable(c.config().producer())
                .forEach((name, t) -> assertTrue(
                        RelativeError.of(
                                        Fixtures.values(t),
                                        Fixtures.values(block.parameters().get(name)),
                                        0)
                                <= ModeSwitchTest.ROUND_TRIP,
                        name));
    }

    @ParameterizedTest
    @EnumSource(
            value = DataType.class,
            names = {"FLOAT", "DOUBLE"})
    void eachModeKeepsExactlyWhatTheModeTableSays(DataType type) {
        int width = type.width();
        ConvBNConfig transposed = ConvBNConfig.of(ConvTransposeConfig.builder(6, 10)
                .kernel(3)
                .stride(2)
                .padding(1)
                .outputPadding(1)
                .groups(2)
                .build());
        long[] in = {3, 6, 5, 4};
        long input = 3L * 6 * 5 * 4 * width;
        long output = 3L * 10 * 10 * 8 * width; // oH = 4*2 - 2 + 2 + 1 + 1 = 10, oW = 3*2 - 2 + 2 + 1 + 1 = 8
        assertBytes(transposed, in, input, output, 6L * 5 * 9, type);
        ConvBNConfig linear = ConvBNConfig.of(new LinearConfig(7, 5, true));
        assertBytes(linear, new long[] {4, 7}, 4L * 7 * width, 4L * 5 * width, 5L * 7, type);
        assertBytes(linear, new long[] {4, 7, 3}, 4L * 7 * 3 * width, 4L * 5 * 3 * width, 5L * 7, type);
    }

    private static void assertBytes(
            ConvBNConfig config, long[] inShape, long input, long output, long weights, DataType type) {
        int width = type.width();
        long channel = (long) config.channels() * width;
        Map<Mode, RetainedBytes> want = Map.of(
                Mode.TRAIN,
                new RetainedBytes(input + output, 2 * channel),
                Mode.EVAL,
                new RetainedBytes(input + output, 0),
                Mode.DEPLOY,
                new RetainedBytes(input, 0),
                Mode.TUNE,
                new RetainedBytes(input, 2 * channel));
        INDArray x = Nd4j.rand(type, inShape);
        for (Mode mode : Mode.values()) {
            ConvBNBlock block = ConvBNBlock.of(config, ConvBNParameters.initialize(config, type, 1), mode);
            INDArray z = block.forward(x);
            assertArrayEquals(config.producer().outputShape(inShape), z.shape(), mode + " output shape");
            assertEquals(want.get(mode), block.retainedBytes(), config.producer() + " " + mode);
            assertEquals(RetainedBytes.predict(config, mode, inShape, width), block.retainedBytes());
            BlockGradients g = block.backward(Nd4j.ones(type, z.shape()));
            assertArrayEquals(inShape, g.input().shape(), "dX has the input's shape");
            assertEquals(RetainedBytes.NONE, block.retainedBytes(), "backward releases what forward kept");
        }
        ConvBNConfig keeping = config.withTuneFold(TuneFold.KEEP);
        ConvBNBlock block = ConvBNBlock.of(keeping, ConvBNParameters.initialize(keeping, type, 1), Mode.TUNE);
        block.forward(x);
        assertEquals(
                new RetainedBytes(input, (weights + 2 * config.channels()) * width),
                block.retainedBytes(),
                "W', b', s kept");
    }

    /**
     * ConvTranspose2d 8 -> 8 in 2 groups: weight [8, 4, 3, 3]. Output channel g*4 + j is fed by weight rows
     * [4g, 4g + 4) at column j. A fold that scales the weight's dimension 0 by s (the conv2d rule) runs without a
     * shape error, because C == O, and is wrong; PyTorch's former transposed rule (dimension 1 by s) meets a
     * [8, 4, 3, 3] weight with 8 scales and fails on the shape. The block's fold matches EVAL.
     */
    @Test
    void theGroupedTransposedFoldScalesEachGroupsOutputChannels() {
        ConfigGrid.Case grid = ConfigGrid.transposed(8, 8, 3, 2, 1, 1, 1, 2, true, true);
        Fixtures.Case c = Fixtures.random(grid.config(), grid.inputShape(), DataType.DOUBLE, 700);
        INDArray eval = ConvBNBlock.of(c.config(), c.nd4j().copy(), Mode.EVAL).forward(c.xNd4j());

        INDArray s = Folding.scale(c.config(), c.nd4j());
        FoldedParameters ours = Folding.fold(c.config(), c.nd4j());
        INDArray naiveWeight = c.nd4j().weight().mul(s.reshape(8, 1, 1, 1)); // dimension 0: the conv2d rule
        FoldedParameters naive = new FoldedParameters(naiveWeight, ours.bias(), s);
        assertThrows(
                IllegalStateException.class,
                () -> c.nd4j().weight().mul(s.reshape(1, 8, 1, 1)),
                "dimension 1 by all 8 scales does not fit the weight's 4 columns");

        double oursError = RelativeError.of(
                Fixtures.values(eval),
                Fixtures.values(ConvBNBlock.deployed(c.config(), ours).forward(c.xNd4j())),
                0);
        double naiveError = RelativeError.of(
                Fixtures.values(eval),
                Fixtures.values(ConvBNBlock.deployed(c.config(), naive).forward(c.xNd4j())),
                0);
        System.out.println("grouped ConvTranspose2d 8->8 g2 fold, relative error of DEPLOY vs EVAL: ours " + oursError
                + ", naive (dimension 0) " + naiveError);
        assertTrue(oursError <= EvalTuneEquivalenceTest.FLOAT64_TOLERANCE, "ours: " + oursError);
        assertTrue(naiveError >= NAIVE_FOLD_MIN_ERROR, "the naive fold should be wrong here: " + naiveError);
        ReferenceConvBN.Folded want = ReferenceConvBN.fold(c.config(), c.reference());
        assertTrue(
                RelativeError.of(want.weight().data(), Fixtures.values(ours.weight()), 0) <= 1e-15,
                "the fold is the reference's, entry by entry");
    }

    /**
     * Networks and benchmarks run blocks on a pooled arena, where released arrays are reused and sit at offsets in
     * larger buffers: three steps there give what they give on fresh arrays, bit for bit, and everything taken from
     * the pool comes back. A grouped conv2d is among them: its per-group slices are made like the transposed conv's.
     */
    @ParameterizedTest
    @EnumSource(
            value = Mode.class,
            names = {"EVAL", "DEPLOY", "TUNE"})
    void blocksStepOnAPooledArenaAsOnFreshArrays(Mode mode) {
        for (ConfigGrid.Case grid : new ConfigGrid.Case[] {
            ConfigGrid.transposed(8, 8, 3, 2, 1, 1, 1, 2, true, true),
            ConfigGrid.transposed(4, 8, 2, 2, 0, 0, 1, 4, false, true),
            ConfigGrid.linear().get(4),
            new ConfigGrid.Case(
                    ConvBNConfig.of(ConvConfig.builder(8, 8)
                            .kernel(3)
                            .padding(1)
                            .groups(2)
                            .build()),
                    new long[] {2, 8, 9, 7})
        }) {
            Fixtures.Case c = Fixtures.random(grid.config(), grid.inputShape(), DataType.FLOAT, 800);
            ConvBNBlock fresh =
                    ConvBNBlock.of(c.config(), c.nd4j().copy(), mode, new Nd4jKernels(DataType.FLOAT, Arena.direct()));
            try (PooledArena arena = Arena.pooled()) {
                ConvBNBlock pooled =
                        ConvBNBlock.of(c.config(), c.nd4j().copy(), mode, new Nd4jKernels(DataType.FLOAT, arena));
                for (int step = 0; step < 3; step++) {
                    INDArray want = fresh.forward(c.xNd4j());
                    INDArray got = pooled.forward(c.xNd4j());
                    assertArrayEquals(Fixtures.values(want), Fixtures.values(got), grid + " output, step " + step);
                    BlockGradients gw = fresh.backward(c.gNd4j());
                    BlockGradients gp = pooled.backward(c.gNd4j());
                    assertArrayEquals(Fixtures.values(gw.input()), Fixtures.values(gp.input()), grid + " dX");
                    gw.parameters()
                            .forEach((k, v) -> assertArrayEquals(
                                    Fixtures.values(v), Fixtures.values(gp.parameter(k)), grid + " d" + k));
                    arena.release(got, gp.input());
                    gp.parameters().values().forEach(arena::release);
                }
                assertEquals(0, arena.stats().leasedBytes(), grid + ": everything given back");
            }
        }
    }

    @Test
    void aLinearWhoseOutputFeaturesAreNotTheBatchNormsIsRefused() {
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> new ConvBNConfig(new LinearConfig(16, 32, true), BatchNormConfig.of(16), true));
        assertTrue(
                e.getMessage().contains("bn.channels")
                        && e.getMessage().contains("features = 32")
                        && e.getMessage().contains("got 16"),
                e.getMessage());
        e = assertThrows(
                IllegalArgumentException.class,
                () -> new ConvBNConfig(ConvTransposeConfig.builder(16, 8).build(), BatchNormConfig.of(16), true));
        assertTrue(e.getMessage().contains("channels = 8") && e.getMessage().contains("got 16"), e.getMessage());
    }

    @Test
    void badInputIsNamed() {
        ConvBNConfig linear = ConvBNConfig.of(new LinearConfig(5, 6, true));
        ConvBNBlock block = ConvBNBlock.initialized(linear, DataType.DOUBLE, 1);
        assertMessage(() -> block.forward(Nd4j.rand(DataType.DOUBLE, 4, 6)), "x: expected 5 features");
        assertMessage(() -> block.forward(Nd4j.rand(DataType.DOUBLE, 4, 5, 2, 2)), "x: expected [N, I=5]");
        assertMessage(() -> block.forward(Nd4j.rand(DataType.DOUBLE, 1, 5)), "TRAIN needs more than one value");
        assertMessage(() -> block.forward(Nd4j.rand(DataType.DOUBLE, 4, 5), Layout.BLOCKED8), "expected layout NCHW");
        block.forward(Nd4j.rand(DataType.DOUBLE, 4, 5, 3));
        assertMessage(() -> block.backward(Nd4j.rand(DataType.DOUBLE, 4, 6)), "gradOutput");
        assertMessage(
                () -> ConvBNBlock.of(
                        linear,
                        ConvBNParameters.of(
                                Nd4j.rand(DataType.DOUBLE, 5, 6),
                                Nd4j.rand(DataType.DOUBLE, 6),
                                Nd4j.rand(DataType.DOUBLE, 6),
                                Nd4j.rand(DataType.DOUBLE, 6),
                                Nd4j.rand(DataType.DOUBLE, 6),
                                Nd4j.rand(DataType.DOUBLE, 6)),
                        Mode.EVAL),
                "linear.weight: expected");

        ConvBNConfig transposed =
                ConvBNConfig.of(ConvTransposeConfig.builder(4, 8).groups(2).build());
        // A conv2d-layout weight [O, C/groups, kH, kW] = [8, 2, 3, 3] for a transposed conv is refused by name.
        assertMessage(
                () -> ConvBNBlock.of(
                        transposed,
                        ConvBNParameters.of(
                                Nd4j.rand(DataType.DOUBLE, 8, 2, 3, 3),
                                Nd4j.rand(DataType.DOUBLE, 8),
                                null,
                                null,
                                Nd4j.zeros(DataType.DOUBLE, 8),
                                Nd4j.ones(DataType.DOUBLE, 8)),
                        Mode.EVAL),
                "conv.weight: expected shape [4, 4, 3, 3]");
        ConvBNBlock t = ConvBNBlock.initialized(transposed, DataType.DOUBLE, 1);
        assertMessage(() -> t.forward(Nd4j.rand(DataType.DOUBLE, 2, 8, 5, 5)), "x: expected 4 channels");
        assertMessage(
                () -> ConvTransposeConfig.builder(4, 8)
                        .stride(2)
                        .outputPadding(2)
                        .build(),
                "outputPadding");
        assertMessage(() -> ConvTransposeConfig.builder(4, 6).groups(4).build(), "groups");
        assertMessage(
                () -> ConvTransposeConfig.builder(4, 8)
                        .kernel(1)
                        .padding(3)
                        .build()
                        .outputShape(new long[] {1, 4, 2, 2}),
                "expected at least 1x1");
        assertMessage(() -> new LinearConfig(0, 3, true), "inFeatures");
    }

    @Test
    void blockTensorsAreNamedAsPyTorchNamesTheModules() {
        ConvBNBlock linear = ConvBNBlock.initialized(ConvBNConfig.of(new LinearConfig(3, 4, true)), DataType.FLOAT, 1);
        assertEquals(
                List.of("linear.weight", "linear.bias", ParameterNames.BN_WEIGHT, ParameterNames.BN_BIAS),
                List.copyOf(linear.parameters().keySet()));
        ConvBNBlock transposed = ConvBNBlock.initialized(
                ConvBNConfig.of(ConvTransposeConfig.builder(3, 4).bias(false).build()), DataType.FLOAT, 1);
        assertEquals(
                List.of(ParameterNames.CONV_WEIGHT, ParameterNames.BN_WEIGHT, ParameterNames.BN_BIAS),
                List.copyOf(transposed.parameters().keySet()));
        assertArrayEquals(
                new long[] {3, 4, 3, 3},
                transposed.parameters().get(ParameterNames.CONV_WEIGHT).shape(),
                "PyTorch's transposed layout [in, out/groups, kH, kW]");
    }

    private static void assertMessage(Executable e, String part) {
        Exception thrown = assertThrows(Exception.class, e);
        assertTrue(
                thrown instanceof IllegalArgumentException, () -> "expected IllegalArgumentException, got " + thrown);
        assertTrue(thrown.getMessage().contains(part), () -> "\"" + thrown.getMessage() + "\" should name " + part);
    }

    @AfterAll
    static void report() {
        WORST.forEach((k, v) -> System.out.println("worst relative error, " + k + ": " + v));
    }
}
