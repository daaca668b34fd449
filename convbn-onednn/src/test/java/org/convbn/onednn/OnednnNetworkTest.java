package org.convbn.onednn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.EnumMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Predicate;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.convbn.core.Mode;
import org.convbn.core.RetainedBytes;
import org.convbn.nd4j.RetainedOutput;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.KernelsProvider;
import org.convbn.nd4j.kernel.Layout;
import org.convbn.net.EfficientNet;
import org.convbn.net.MobileNetV2;
import org.convbn.net.NamedBlock;
import org.convbn.net.Network;
import org.convbn.net.NetworkMemoryTest;
import org.convbn.net.ResNet;
import org.convbn.net.SoftmaxCrossEntropy;
import org.convbn.net.StateDict;
import org.convbn.testkit.conformance.RelativeError;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A whole ResNet on oneDNN's kernels (float32, blocked feature maps between layers) against the same network on
 * ND4J's kernels (themselves checked against finite differences and the float64 reference), in every mode; and its
 * memory: owned by the arena, no fresh pages in steady state.
 *
 * <p>Both in float32: against float64 a ReLU input or a max-pool tie within float32 rounding can route a gradient
 * differently (seen once in 12 random inputs: 4e-2 on one weight gradient, in both float32 kernel sets alike), which
 * says nothing about the kernels.
 */
class OnednnNetworkTest {
    /**
     * Two float32 kernel sets through 20 (ResNet-18) or 49 (EfficientNet-B0) blocks, forward and backward: the same
     * sums in other orders (oneDNN's blocked kernels against im2col and GEMM, oneDNN's swish against libnd4j's
     * sigmoid times z), rounding (6e-8) grown by depth and by the BN rescaling (batch statistics of 8 values per
     * channel in the last stages in TRAIN). Measured worst: ResNet-18 4.3e-5 over 12 random inputs; EfficientNet-B0
     * 1.1e-4 in EVAL and 6.9e-4 in TRAIN (its gates multiply the errors of two paths).
     */
    static final double KERNEL_SETS_AGREE = 1e-3;
    /** Tensors whose largest value is below this compare in absolute terms (the bias-free convs' zero gradients). */
    static final double FLOOR = 1e-3;
    /**
     * Largest magnitude of a gradient that is 0 in exact arithmetic (a projection's proxy-norm beta: with the identity
     * activation a shift of a moves the proxy mean alike): float32 noise of per-channel sums of ~10^4 terms of
     * order 1e-3 (differences measured ~1.4e-6).
     */
    static final double ZERO_NOISE = 1e-4;

    static final int[] LABELS = {3, 1};
    private static final Map<String, Double> WORST = new TreeMap<>();

    /** Both blocked layouts on every CPU (the one the CPU's ISA does not use runs oneDNN's slower kernels). */
    static Stream<Layout> layouts() {
        return Stream.of(Layout.BLOCKED8, Layout.BLOCKED16);
    }

    /** Builds a network with the oneDNN kernels keeping feature maps in {@code layout}. */
    static <N extends Network> N inLayout(Layout layout, Supplier<N> build) {
        System.setProperty(OnednnPlatform.LAYOUT_PROPERTY, layout.name().toLowerCase(Locale.ROOT));
        try {
            return build.get();
        } finally {
            System.clearProperty(OnednnPlatform.LAYOUT_PROPERTY);
        }
    }

    /**
     * Fails when any primitive the kernels ran is one of oneDNN's reference implementations (orders of magnitude
     * slower than its jit ones).
     */
    static void assertNoReferenceImplementation(Kernels k) {
        Map<String, Set<String>> ran = k.implementations();
        assertFalse(ran.isEmpty(), "the kernels report what ran");
        ran.forEach((kind, impls) -> impls.forEach(impl -> assertFalse(
                impl.startsWith("ref"),
                () -> kind + " ran oneDNN's reference implementation " + impl + "; all: " + ran)));
    }

    /** In the CPU's own layout, no primitive of a step may run a reference implementation. */
    private static void assertNoReferenceInNativeLayout(Layout layout, Network fast) {
        if (layout == OnednnPlatform.current().nativeLayout()) {
            assertNoReferenceImplementation(fast.kernels());
        }
    }

    /**
     * ResNet-18 in the CPU's own layout. Not in the other: there oneDNN has no direct convolutions (16-channel blocks
     * on AVX2) and runs its GEMM-based ones on plain NCHW, as it does for plain feature maps, and in DEPLOY those
     * differ from ND4J's on one weight gradient element by 1.3e-2 of the tensor's largest (layer1.0.conv1, the same
     * element in NCHW and in 16-channel blocks: the GEMM convolution's path, not the layout; all other tensors and
     * modes below 1e-6). The max pool after the stem makes this network's gradients route on float32 near-ties;
     * EfficientNet-B0 (no max pool) runs in both layouts below, and every block kind in both layouts is checked
     * against the float64 reference in {@code OnednnBlockTest}.
     */
    static Stream<Layout> nativeLayout() {
        return Stream.of(OnednnPlatform.current().nativeLayout());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("nativeLayout")
    void everyModeMatchesTheNetworkOnNd4jKernels(Layout layout) {
        // 64x64: layer4's batch statistics then see 8 values per channel (at 32x32 only 2, which normalise to +-1
        // and make TRAIN's gradients ill-conditioned)
        Nd4j.getRandom().setSeed(4);
        INDArray x = Nd4j.rand(DataType.FLOAT, 2, 3, 64, 64).subi(0.5);
        for (Mode mode : Mode.values()) {
            ResNet exact;
            System.setProperty(KernelsProvider.PROPERTY, "nd4j");
            try {
                exact = ResNet.builder(ResNet.Variant.RESNET18)
                        .classes(10)
                        .dataType(DataType.FLOAT)
                        .seed(5)
                        .mode(Mode.TRAIN)
                        .build();
            } finally {
                System.clearProperty(KernelsProvider.PROPERTY);
            }
            try (ResNet fast = inLayout(layout, () -> ResNet.builder(ResNet.Variant.RESNET18)
                            .classes(10)
                            .dataType(DataType.FLOAT)
                            .seed(5)
                            .mode(Mode.TRAIN)
                            .build());
                    exact) {
                assertEquals("onednn", fast.kernels().name());
                assertEquals("nd4j", exact.kernels().name());
                spreadRunningVariance(exact);
                compareStep(exact, fast, x, mode);
                assertNoReferenceInNativeLayout(layout, fast);
            }
        }
    }

    /**
     * EfficientNet-B0 as the ResNet above: depthwise convs, SiLU (oneDNN's swish), squeeze-and-excitation gates on
     * blocked feature maps, and dropout and stochastic depth drawn (the same masks on both: same seed).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("layouts")
    void efficientNetMatchesTheNetworkOnNd4jKernelsInEveryMode(Layout layout) {
        Nd4j.getRandom().setSeed(4);
        INDArray x = Nd4j.rand(DataType.FLOAT, 2, 3, 64, 64).subi(0.5);
        INDArray calibration = Nd4j.rand(DataType.FLOAT, 4, 3, 64, 64).subi(0.5);
        for (Mode mode : Mode.values()) {
            EfficientNet exact;
            System.setProperty(KernelsProvider.PROPERTY, "nd4j");
            try {
                exact = EfficientNet.builder()
                        .classes(10)
                        .dataType(DataType.FLOAT)
                        .seed(5)
                        .mode(Mode.TRAIN)
                        .batchNormMomentum(1)
                        .stochasticDepth(0.5)
                        .build();
            } finally {
                System.clearProperty(KernelsProvider.PROPERTY);
            }
            try (EfficientNet fast = inLayout(layout, () -> EfficientNet.builder()
                            .classes(10)
                            .dataType(DataType.FLOAT)
                            .seed(5)
                            .mode(Mode.TRAIN)
                            .batchNormMomentum(1)
                            .stochasticDepth(0.5)
                            .build());
                    exact) {
                assertEquals("onednn", fast.kernels().name());
                assertEquals("nd4j", exact.kernels().name());
                // running statistics of real activations (one TRAIN forward at momentum 1): with PyTorch's
                // initialisation the signal would die out through the depth in the other modes
                exact.setStochastic(false);
                exact.arena().release(exact.forward(calibration));
                exact.clearSaved();
                exact.setStochastic(true);
                compareStep(exact, fast, x, mode);
                assertNoReferenceInNativeLayout(layout, fast);
            }
        }
    }

    /**
     * The proxy-normalised EfficientNet-B0 (GroupNorm and proxy-normalised SiLU in place of BN and SiLU) as the
     * BN one above: its conv + norm layers run on oneDNN's convolutions with their GroupNorm groups in the blocked
     * layout (blocks of 8, a group's width, under either preferred layout), one function in every mode.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("layouts")
    void proxyNormEfficientNetMatchesTheNetworkOnNd4jKernels(Layout layout) {
        Nd4j.getRandom().setSeed(4);
        INDArray x = Nd4j.rand(DataType.FLOAT, 2, 3, 64, 64).subi(0.5);
        EfficientNet exact;
        System.setProperty(KernelsProvider.PROPERTY, "nd4j");
        try {
            exact = EfficientNet.builder()
                    .classes(10)
                    .dataType(DataType.FLOAT)
                    .seed(5)
                    .normalization(EfficientNet.Normalization.GROUP_NORM_PROXY)
                    .build();
        } finally {
            System.clearProperty(KernelsProvider.PROPERTY);
        }
        try (EfficientNet fast = inLayout(layout, () -> EfficientNet.builder()
                        .classes(10)
                        .dataType(DataType.FLOAT)
                        .seed(5)
                        .normalization(EfficientNet.Normalization.GROUP_NORM_PROXY)
                        .build());
                exact) {
            assertEquals("onednn", fast.kernels().name());
            exact.setStochastic(false);
            fast.setStochastic(false);
            Set<String> names = exact.parameters().keySet();
            compareStep(exact, fast, x, Mode.TUNE, name -> isProjectionBeta(name, names));
            assertNoReferenceInNativeLayout(layout, fast);
        }
    }

    /**
     * @param names every tensor of the network
     * @return whether a tensor is the proxy-norm beta of a unit's last layer, its projection (identity activation)
     */
    private static boolean isProjectionBeta(String name, Set<String> names) {
        Matcher m = Pattern.compile("(features\\.\\d+\\.\\d+\\.block\\.)(\\d+)\\.1\\.beta")
                .matcher(name);
        if (!m.matches()) {
            return false;
        }
        String next = m.group(1) + (Integer.parseInt(m.group(2)) + 1) + ".";
        return names.stream().noneMatch(n -> n.startsWith(next));
    }

    /**
     * MobileNetV2 as the ResNet above in the fine-tuning modes: ReLU6 (oneDNN's clip) read back from its output in
     * the backward, depthwise convs without a gate, dropout drawn (same masks on both); also with its first six parts
     * frozen (the prefix runs folded, keeps nothing, and the backward stops inside features.6). Not TRAIN: there its
     * projection BNs' bias gradients are 0 in exact arithmetic (the next BN's batch mean removes a constant) and
     * both float32 sets hold rounding noise of ~1e-6 in them, and the batch statistics of the last stages are
     * ill-conditioned in float32 (measured at 96x96: either float32 set against float64 3.6% off on
     * features.18.1.bias, both alike);
     * TRAIN's kernels are the ResNet's and EfficientNet's above, and its math is checked in float64 against
     * torchvision (ZooTorchvisionTest).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("nativeLayout")
    void mobileNetMatchesTheNetworkOnNd4jKernelsInEveryModeAlsoWithAFrozenPrefix(Layout layout) {
        Nd4j.getRandom().setSeed(4);
        INDArray x = Nd4j.rand(DataType.FLOAT, 2, 3, 64, 64).subi(0.5);
        for (int frozen : new int[] {0, 6}) {
            for (Mode mode : new Mode[] {Mode.EVAL, Mode.TUNE, Mode.DEPLOY}) {
                MobileNetV2 exact;
                System.setProperty(KernelsProvider.PROPERTY, "nd4j");
                try {
                    exact = MobileNetV2.builder()
                            .classes(10)
                            .dataType(DataType.FLOAT)
                            .seed(5)
                            .mode(Mode.TRAIN)
                            .build();
                } finally {
                    System.clearProperty(KernelsProvider.PROPERTY);
                }
                try (MobileNetV2 fast = inLayout(layout, () -> MobileNetV2.builder()
                                .classes(10)
                                .dataType(DataType.FLOAT)
                                .seed(5)
                                .mode(Mode.TRAIN)
                                .build());
                        exact) {
                    assertEquals("onednn", fast.kernels().name());
                    spreadRunningVariance(exact);
                    exact.setFrozenParts(frozen);
                    fast.setFrozenParts(frozen);
                    compareStep(exact, fast, x, mode);
                    assertNoReferenceInNativeLayout(layout, fast);
                }
            }
        }
    }

    /** Running variances in [0.5, 1.36], spread like a pretrained network's (PyTorch's initialisation has 1). */
    private static void spreadRunningVariance(Network net) {
        StateDict.of(net).forEach((k, v) -> {
            if (k.endsWith("running_var")) {
                double[] var = new double[(int) v.length()];
                for (int i = 0; i < var.length; i++) {
                    var[i] = 0.5 + (i % 7) / 7.0;
                }
                v.assign(Nd4j.createFromArray(var));
            }
        });
    }

    /** Loads exact's tensors into fast, then runs a step on both in {@code mode} and compares everything. */
    private static void compareStep(Network exact, Network fast, INDArray x, Mode mode) {
        compareStep(exact, fast, x, mode, name -> false);
    }

    /**
     * As above, except that the gradients named by {@code zeroInExactArithmetic} are only checked to be rounding
     * noise ({@link #ZERO_NOISE}) in both: their relative difference says nothing.
     */
    private static void compareStep(
            Network exact, Network fast, INDArray x, Mode mode, Predicate<String> zeroInExactArithmetic) {
        StateDict.load(fast, StateDict.of(exact));
        fast.setMode(mode);
        exact.setMode(mode);
        INDArray l32 = fast.forward(x);
        INDArray l64 = exact.forward(x);
        String net = exact.getClass().getSimpleName() + "-" + mode;
        close(net + " logits", l64, l32);
        Map<String, INDArray> g32 =
                fast.backward(SoftmaxCrossEntropy.of(l32, LABELS).gradLogits());
        Map<String, INDArray> g64 =
                exact.backward(SoftmaxCrossEntropy.of(l64, LABELS).gradLogits());
        assertEquals(g64.keySet(), g32.keySet());
        g64.forEach((k, v) -> {
            if (zeroInExactArithmetic.test(k)) {
                assertTrue(
                        v.amaxNumber().doubleValue() <= ZERO_NOISE
                                && g32.get(k).amaxNumber().doubleValue() <= ZERO_NOISE,
                        () -> net + " d" + k + ": expected rounding noise, got " + v.amaxNumber() + " and "
                                + g32.get(k).amaxNumber());
            } else {
                close(net + " d" + k, v, g32.get(k));
            }
        });
        if (mode == Mode.TRAIN) {
            StateDict.of(exact)
                    .forEach(
                            (k, v) -> close(net + " " + k, v, StateDict.of(fast).get(k)));
        }
    }

    @Test
    void tuneKeepsWhatDeployKeepsAndOneFeatureMapPerBlockLessThanEval() {
        INDArray x = Nd4j.rand(DataType.FLOAT, 2, 3, 64, 64);
        Map<Mode, RetainedBytes> held = new EnumMap<>(Mode.class);
        long blockOutputs = 0;
        for (Mode mode : Mode.values()) {
            try (ResNet net = ResNet.builder(ResNet.Variant.RESNET18)
                    .classes(10)
                    .dataType(DataType.FLOAT)
                    .seed(5)
                    .mode(mode)
                    .build()) {
                net.arena().release(net.forward(x));
                held.put(mode, net.retainedBytes());
                if (mode == Mode.EVAL) {
                    for (NamedBlock b : net.blocks()) {
                        blockOutputs += RetainedOutput.bytes(b.block());
                    }
                }
            }
        }
        assertEquals(
                held.get(Mode.DEPLOY).activationBytes(), held.get(Mode.TUNE).activationBytes());
        assertEquals(
                held.get(Mode.TUNE).activationBytes() + blockOutputs,
                held.get(Mode.EVAL).activationBytes());
        long channels = 64 + 4 * 64 + 5 * 128 + 5 * 256 + 5 * 512; // the 20 blocks' output channels
        assertEquals(2 * channels * 4, held.get(Mode.TUNE).weightBytes(), "b' and s of every block, in float32");
    }

    @Test
    void memoryIsOwnedByTheArenaAndFlatInSteadyState() throws IOException {
        NetworkMemoryTest.check(DataType.FLOAT, true);
    }

    @AfterAll
    static void report() {
        System.out.println("oneDNN vs ND4J kernels, float32 network, worst relative error per mode: " + WORST);
    }

    private static void close(String what, INDArray want, INDArray got) {
        double err = RelativeError.of(
                want.castTo(DataType.DOUBLE).reshape(want.length()).toDoubleVector(),
                got.castTo(DataType.DOUBLE).reshape(got.length()).toDoubleVector(),
                FLOOR);
        WORST.merge(what.substring(0, what.indexOf(' ')), err, Math::max);
        assertTrue(err <= KERNEL_SETS_AGREE, () -> what + ": relative error " + err);
    }
}
