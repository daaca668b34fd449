package org.convbn.onednn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.convbn.core.BatchNormConfig;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.convbn.core.Mode;
import org.convbn.core.Padding;
import org.convbn.core.Precision;
import org.convbn.nd4j.BackendVsReferenceTest;
import org.convbn.nd4j.ConvBNBlock;
import org.convbn.nd4j.ConvBNParameters;
import org.convbn.nd4j.EvalTuneEquivalenceTest;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.ElementwiseKernelsTest;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.Layout;
import org.convbn.nd4j.kernel.PooledArena;
import org.convbn.testkit.conformance.ConfigGrid;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The block on oneDNN's kernels against the float64 reference, on the grid every kernel set is checked on (NCHW in
 * and out, 4 to 8 channels) and on cases with blocked feature maps in and out (b to 2b channels, in blocks of 8 and of
 * 16 whatever the CPU: oneDNN runs slower kernels for the block its ISA does not use), in every mode; and EVAL against
 * TUNE.
 */
class OnednnBlockTest {
    /**
     * EVAL against TUNE in float32: the same sums in other orders (s applied to the conv's output or folded into the
     * weight; dgamma from g.Y or from dW'.W), so a few float32 roundings of order-one values; measured below 2e-6.
     */
    static final double FLOAT32_EQUIVALENCE = 1e-4;
    /** oneDNN's swish and binary multiply in float32 against double formulas: rounding of a few operations. */
    static final double FLOAT_ELEMENTWISE = 1e-5;

    private static final Map<Mode, Double> WORST = new EnumMap<>(Mode.class);
    private static final Map<Mode, Double> WORST_BF16 = new EnumMap<>(Mode.class);

    static Stream<ConfigGrid.Case> grid() {
        return ConfigGrid.full().stream();
    }

    /** The blocked layouts, each tested on every CPU. */
    static Stream<Layout> blockedLayouts() {
        return Stream.of(Layout.BLOCKED8, Layout.BLOCKED16);
    }

    /**
     * Cases for feature maps blocked in {@code layout}: b input channels, 2b output channels (b the block), so both
     * feature maps can be blocked; groups 1, 2 and b (depthwise); and depthwise 5x5 convs of b channels.
     */
    static List<Arguments> blocked(Layout layout) {
        int b = layout.block();
        List<Arguments> cases = new ArrayList<>();
        long[] input = {2, b, 9, 7};
        for (int kernel : new int[] {1, 3}) {
            for (int stride : new int[] {1, 2}) {
                for (int groups : new int[] {1, 2, b}) {
                    for (boolean bias : new boolean[] {true, false}) {
                        ConvConfig conv = ConvConfig.builder(b, 2 * b)
                                .kernel(kernel)
                                .stride(stride)
                                .padding(kernel == 3 && groups == 2 ? Padding.same() : Padding.of(kernel / 2))
                                .dilation(kernel == 3 && stride == 1 && !bias ? 2 : 1)
                                .groups(groups)
                                .bias(bias)
                                .build();
                        cases.add(Arguments.of(
                                layout,
                                new ConfigGrid.Case(
                                        new ConvBNConfig(
                                                conv, new BatchNormConfig(2 * b, 1e-3, 0.1, groups != 2 || bias), true),
                                        input)));
                    }
                }
            }
        }
        // Depthwise 5x5 (EfficientNet's, MobileNetV3's), whose weight gradient oneDNN's direct depthwise kernel
        // refuses: the kernels take it as a forward correlation (padding 0 with stride 2 leaves the last input row
        // and column unread, which that correlation computes and drops).
        for (int stride : new int[] {1, 2}) {
            for (int padding : new int[] {2, 0}) {
                for (boolean bias : new boolean[] {true, false}) {
                    ConvConfig conv = ConvConfig.builder(b, b)
                            .kernel(5)
                            .stride(stride)
                            .padding(Padding.of(padding))
                            .groups(b)
                            .bias(bias)
                            .build();
                    cases.add(Arguments.of(
                            layout,
                            new ConfigGrid.Case(
                                    new ConvBNConfig(conv, new BatchNormConfig(b, 1e-3, 0.1, true), true),
                                    new long[] {2, b, 10, 9})));
                }
            }
        }
        return cases;
    }

    static Stream<Arguments> blocked() {
        return blockedLayouts().flatMap(l -> blocked(l).stream());
    }

    private static Kernels kernels() {
        return new OnednnKernels(Arena.direct());
    }

    private static Kernels kernels(Layout layout) {
        return new OnednnKernels(Arena.direct(), layout);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("grid")
    void everyModeMatchesTheReferenceInNchw(ConfigGrid.Case grid) {
        BackendVsReferenceTest.check(
                grid, DataType.FLOAT, kernels(), Layout.NCHW, BackendVsReferenceTest.FLOAT32_TOLERANCE, WORST);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("blocked")
    void everyModeMatchesTheReferenceOnBlockedFeatureMaps(Layout layout, ConfigGrid.Case c) {
        BackendVsReferenceTest.check(
                c, DataType.FLOAT, kernels(layout), layout, BackendVsReferenceTest.FLOAT32_TOLERANCE, WORST);
        BackendVsReferenceTest.check(
                c, DataType.FLOAT, kernels(layout), Layout.NCHW, BackendVsReferenceTest.FLOAT32_TOLERANCE, WORST);
    }

    /**
     * Mixed precision on the oneDNN kernels, as {@link Precision#BF16_EMULATED} runs it: feature maps (blocked or not)
     * stored in bfloat16 between float32 primitives, every mode against the float64 reference on the bfloat16 input.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("blocked")
    void everyModeWithBfloat16FeatureMapsMatchesTheReference(Layout layout, ConfigGrid.Case c) {
        Kernels k = Kernels.withBf16FeatureMaps(kernels(layout));
        assertEquals(Precision.BF16_EMULATED, k.precision());
        BackendVsReferenceTest.check(c, DataType.FLOAT, k, layout, BackendVsReferenceTest.BF16_TOLERANCE, WORST_BF16);
    }

    /**
     * The 5x5 depthwise weight gradient runs one of oneDNN's direct kernels (the depthwise forward, as a correlation of
     * x with g), not its GEMM-based backward-weights kernel, in every mode, in the CPU's own layout (in the other
     * block oneDNN has no direct kernels: 16-channel blocks on AVX2, where every conv runs GEMM-based on NCHW).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.convbn.onednn.OnednnNetworkTest#nativeLayout")
    void aFiveByFiveDepthwiseWeightGradientRunsADirectKernel(Layout layout) {
        assumeTrue(layout.isBlocked(), "below AVX2 oneDNN's convolutions run on NCHW");
        int b = layout.block();
        ConvConfig conv = ConvConfig.builder(2 * b, 2 * b)
                .kernel(5)
                .stride(2)
                .padding(Padding.of(2))
                .groups(2 * b)
                .bias(false)
                .build();
        Kernels k = checkedAgainstTheReference(layout, conv, new long[] {2, 2 * b, 14, 14});
        Map<String, Set<String>> ran = k.implementations();
        assertTrue(
                ran.getOrDefault("convolution forward_inference", Set.of()).stream()
                        .anyMatch(i -> i.startsWith("jit_dw")),
                () -> "the correlation ran oneDNN's direct depthwise kernel; all: " + ran);
        assertNoGemmConvolution(k);
    }

    /**
     * A grouped conv whose groups are half a channel block wide (ResNeXt-50's 32 groups of 4 channels in its first
     * stage, on 8-channel blocks) runs as the conv with neighbouring groups merged and a block-diagonal weight, on
     * oneDNN's direct kernels, in every mode, in the CPU's own layout; the values are checked against the float64
     * reference like every other case (the groups-of-2 cases of {@link #blocked(Layout)} take the same path).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("org.convbn.onednn.OnednnNetworkTest#nativeLayout")
    void groupsNarrowerThanABlockRunADirectKernel(Layout layout) {
        assumeTrue(layout.isBlocked(), "below AVX2 oneDNN's convolutions run on NCHW");
        int b = layout.block();
        ConvConfig conv = ConvConfig.builder(4 * b, 4 * b)
                .kernel(3)
                .padding(Padding.of(1))
                .groups(8)
                .bias(false)
                .build();
        assertNoGemmConvolution(checkedAgainstTheReference(layout, conv, new long[] {2, 4 * b, 10, 10}));
    }

    /**
     * Checks the block of {@code conv} and a BN against the float64 reference in every mode, on kernels keeping
     * {@code layout}.
     *
     * @return those kernels, which remember the implementations they ran
     */
    private static Kernels checkedAgainstTheReference(Layout layout, ConvConfig conv, long[] input) {
        Kernels k = kernels(layout);
        BackendVsReferenceTest.check(
                new ConfigGrid.Case(
                        new ConvBNConfig(conv, new BatchNormConfig(conv.outChannels(), 1e-3, 0.1, true), true), input),
                DataType.FLOAT,
                k,
                layout,
                BackendVsReferenceTest.FLOAT32_TOLERANCE,
                WORST);
        return k;
    }

    /** Fails when a convolution the kernels ran took oneDNN's GEMM-based path rather than a direct kernel. */
    private static void assertNoGemmConvolution(Kernels k) {
        Map<String, Set<String>> ran = k.implementations();
        ran.forEach((kind, impls) -> impls.forEach(impl -> assertFalse(
                kind.startsWith("convolution") && impl.contains("gemm"),
                () -> kind + " ran oneDNN's GEMM-based " + impl + "; all: " + ran)));
    }

    /** Transposed conv and linear blocks: the BN passes run on these kernels, linear's product as their 1x1 conv. */
    static Stream<ConfigGrid.Case> otherKinds() {
        return Stream.concat(ConfigGrid.transposed().stream(), ConfigGrid.linear().stream());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("otherKinds")
    void otherLayerKindsMatchTheReferenceAndAgreeInEvalAndTune(ConfigGrid.Case grid) {
        BackendVsReferenceTest.check(
                grid, DataType.FLOAT, kernels(), Layout.NCHW, BackendVsReferenceTest.FLOAT32_TOLERANCE, WORST);
        EvalTuneEquivalenceTest.check(grid, DataType.FLOAT, kernels(), FLOAT32_EQUIVALENCE);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("blockedLayouts")
    void aTransposedBlockReadsAndWritesBlockedFeatureMaps(Layout layout) {
        int b = layout.block();
        BackendVsReferenceTest.check(
                ConfigGrid.transposed(b, 2 * b, 3, 2, 1, 1, 1, 2, true, true),
                DataType.FLOAT,
                kernels(layout),
                layout,
                BackendVsReferenceTest.FLOAT32_TOLERANCE,
                WORST);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("grid")
    void evalAndTuneAgree(ConfigGrid.Case grid) {
        EvalTuneEquivalenceTest.check(grid, DataType.FLOAT, kernels(), FLOAT32_EQUIVALENCE);
    }

    /**
     * The gate in every layout, SiLU, ReLU6 and hardswish with their backwards, and none of them on a reference
     * implementation of oneDNN's.
     */
    @Test
    void theActivationsAndTheChannelGateMatchTheirFormulas() {
        OnednnKernels k = new OnednnKernels(Arena.direct());
        ElementwiseKernelsTest.check(k, FLOAT_ELEMENTWISE);
        OnednnNetworkTest.assertNoReferenceImplementation(k);
    }

    @Test
    void theProviderIsFoundAndChosenForFloat32() {
        assertTrue(OnednnKernelsProvider.available(), "oneDNN's natives load in the tests");
        assertEquals("onednn", Kernels.create(DataType.FLOAT, Arena.direct()).name());
        assertEquals("nd4j", Kernels.create(DataType.DOUBLE, Arena.direct()).name(), "oneDNN has no float64");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("blockedLayouts")
    void aBlockStepGivesBackEverythingItTookFromThePool(Layout layout) {
        ConvBNConfig config = ConvBNConfig.of(
                ConvConfig.builder(16, 32).kernel(3).stride(2).padding(1).build());
        try (PooledArena arena = Arena.pooled();
                Kernels k = new OnednnKernels(arena, layout)) {
            INDArray x = k.relayout(Nd4j.rand(DataType.FLOAT, 4, 16, 12, 12), layout);
            for (Mode mode : Mode.values()) {
                long base = arena.stats().leasedBytes();
                ConvBNBlock block =
                        ConvBNBlock.of(config, ConvBNParameters.initialize(config, DataType.FLOAT, 3), mode, k);
                for (int step = 0; step < 3; step++) {
                    INDArray z = block.forward(x, layout);
                    var g = block.backward(z);
                    arena.release(z, g.input());
                    g.parameters().values().forEach(arena::release);
                }
                arena.release(block.forward(x, layout)); // an inference-only forward: only the output read
                long created = arena.stats().buffersCreated();
                block.setMode(mode == Mode.DEPLOY ? Mode.DEPLOY : Mode.EVAL);
                assertEquals(
                        base + (mode == Mode.TRAIN ? 2L * 32 * 4 : 0),
                        arena.stats().leasedBytes(),
                        mode + ": after setMode only the last TRAIN batch statistics stay leased");
                assertEquals(created, arena.stats().buffersCreated());
            }
        }
    }

    @AfterAll
    static void report() {
        System.out.println("oneDNN vs reference, worst relative error per mode: " + WORST);
        System.out.println(
                "oneDNN with bfloat16 feature maps vs reference, worst relative error per mode: " + WORST_BF16);
    }
}
