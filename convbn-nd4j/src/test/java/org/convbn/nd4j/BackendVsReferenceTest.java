package org.convbn.nd4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.EnumMap;
import java.util.Map;
import java.util.stream.Stream;
import org.convbn.core.Mode;
import org.convbn.core.Precision;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.Layout;
import org.convbn.nd4j.kernel.Nd4jKernels;
import org.convbn.testkit.conformance.ConfigGrid;
import org.convbn.testkit.conformance.RelativeError;
import org.convbn.testkit.reference.ReferenceConvBN;
import org.convbn.testkit.reference.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The ND4J block against the float64 reference on the full grid, every mode, forward, running statistics and
 * all gradients, in float64 and float32. {@link #check} is the same comparison for any kernel set and layout.
 */
public class BackendVsReferenceTest {
    /** float64: the two implementations sum the same products in different orders. */
    public static final double FLOAT64_TOLERANCE = 1e-10;
    /**
     * float32 against float64 on the same (rounded) inputs: unit roundoff 6e-8, sums of up to
     * C/groups*kH*kW = 36 products, the BN rescale by s up to ~45 (eps 1e-3) and, in TRAIN, division by a batch
     * standard deviation of as few as 4 values per channel; measured worst 3e-5 in TRAIN, 6e-7 in the other modes.
     */
    public static final double FLOAT32_TOLERANCE = 1e-4;
    /** Tensors whose largest value is below this are compared in absolute terms. */
    static final double FLOOR = 0.1;
    /**
     * Floor for TRAIN's conv bias gradient in float32. It is zero in exact arithmetic (BN removes any per-channel
     * constant); in float32 it is the cancellation residue of sum(dY) over up to 70 values per channel whose
     * terms reach ~10, i.e. ~70 * 10 * 6e-8 = 4e-5 per term sum, measured up to 1.8e-4. Relative to this floor the
     * tolerance bounds that residue by 1e-4 * 10 = 1e-3.
     */
    static final double TRAIN_BIAS_FLOAT32_FLOOR = 10;

    /**
     * Feature maps in bfloat16 (x and dL/dY given in bfloat16, the reference computing on their values): each stored
     * map is rounded once to 8 bits of mantissa, a relative error up to 2^-9 = 0.002 of its value, and TRAIN's batch
     * statistics are taken from the rounded conv output.
     */
    public static final double BF16_TOLERANCE = 0.02;

    /**
     * TRAIN with feature maps in bfloat16: dL/dY leaves BN's backward orthogonal, per channel, to the constants and to
     * the normalised output, so that the weight gradient {@code sum x dY} and the bias gradient cancel to far below
     * their terms in exact arithmetic; rounding dL/dY to bfloat16 (as a bfloat16 kernel stores it) breaks that
     * cancellation at 2^-9 of the terms. Measured worst 0.125 (dW of a 1x1 conv without BN affine) where the other
     * modes stay below 0.006.
     */
    public static final double BF16_TRAIN_TOLERANCE = 0.25;

    private static final Map<Mode, Double> WORST_BF16 = new EnumMap<>(Mode.class);

    private static final Map<DataType, Map<Mode, Double>> WORST =
            Map.of(DataType.DOUBLE, new EnumMap<>(Mode.class), DataType.FLOAT, new EnumMap<>(Mode.class));

    static Stream<Arguments> cases() {
        return ConfigGrid.full().stream()
                .flatMap(c -> Stream.of(Arguments.of(c, DataType.DOUBLE), Arguments.of(c, DataType.FLOAT)));
    }

    @ParameterizedTest(name = "{1} {0}")
    @MethodSource("cases")
    void everyModeMatchesTheReference(ConfigGrid.Case grid, DataType type) {
        double tol = type == DataType.DOUBLE ? FLOAT64_TOLERANCE : FLOAT32_TOLERANCE;
        check(grid, type, new Nd4jKernels(type, Arena.direct()), Layout.NCHW, tol, WORST.get(type));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("grids")
    void everyModeInBfloat16MatchesTheReference(ConfigGrid.Case grid) {
        check(
                grid,
                DataType.FLOAT,
                Kernels.create(DataType.FLOAT, Precision.BF16_EMULATED, Arena.direct()),
                Layout.NCHW,
                BF16_TOLERANCE,
                WORST_BF16);
    }

    static Stream<ConfigGrid.Case> grids() {
        return ConfigGrid.full().stream();
    }

    @AfterAll
    static void reportBfloat16() {
        System.out.println("ND4J bfloat16 feature maps vs reference, worst relative error per mode: " + WORST_BF16);
    }

    /**
     * Runs one grid case through a block on the given kernels in every mode and compares output, running statistics
     * and every gradient with the float64 reference; for DEPLOY also the fold. The input is given in {@code layout}
     * and the block's results are compared in NCHW.
     *
     * @param worst receives the worst relative error per mode (modified)
     */
    public static void check(
            ConfigGrid.Case grid, DataType type, Kernels kernels, Layout layout, double tol, Map<Mode, Double> worst) {
        for (Mode mode : new Mode[] {Mode.TRAIN, Mode.EVAL, Mode.TUNE}) {
            double modeTol = mode == Mode.TRAIN && kernels.precision().isBf16() ? BF16_TRAIN_TOLERANCE : tol;
            Fixtures.Case c = Fixtures.random(grid.config(), grid.inputShape(), type, featureType(kernels, type), 100);
            ReferenceConvBN.Forward want = ReferenceConvBN.forward(c.config(), mode, c.reference(), c.x());
            ReferenceConvBN.Gradients wantGrads =
                    ReferenceConvBN.backward(c.config(), mode, c.reference(), c.x(), c.g());
            ConvBNBlock block = ConvBNBlock.of(c.config(), c.nd4j(), mode, kernels);
            Run got = run(block, kernels, layout, c);
            String where = type + " " + kernels.name() + " " + layout + " " + mode + " " + grid;
            compare(worst, mode, where + " output", want.output(), got.output(), modeTol, FLOOR);
            compare(
                    worst,
                    mode,
                    where + " running mean",
                    want.runningMean(),
                    c.nd4j().runningMean(),
                    modeTol,
                    FLOOR);
            compare(
                    worst,
                    mode,
                    where + " running var",
                    want.runningVar(),
                    c.nd4j().runningVar(),
                    modeTol,
                    FLOOR);
            compare(
                    worst,
                    mode,
                    where + " dX",
                    wantGrads.input(),
                    got.gradients().input(),
                    modeTol,
                    FLOOR);
            assertEquals(
                    wantGrads.parameters().keySet(),
                    got.gradients().parameters().keySet(),
                    where);
            wantGrads.parameters().forEach((name, t) -> {
                boolean cancelled = mode == Mode.TRAIN
                        && type == DataType.FLOAT
                        && name.equals(c.config().producer().biasName());
                compare(
                        worst,
                        mode,
                        where + " d" + name,
                        t,
                        got.gradients().parameter(name),
                        modeTol,
                        cancelled ? TRAIN_BIAS_FLOAT32_FLOOR : FLOOR);
            });
        }
        Fixtures.Case c = Fixtures.random(grid.config(), grid.inputShape(), type, featureType(kernels, type), 200);
        ConvBNBlock block = ConvBNBlock.of(c.config(), c.nd4j(), Mode.DEPLOY, kernels);
        ReferenceConvBN.Folded folded = new ReferenceConvBN.Folded(
                Fixtures.toTensor(block.foldedParameters().weight()),
                Fixtures.toTensor(block.foldedParameters().bias()));
        ReferenceConvBN.Folded wantFold = ReferenceConvBN.fold(c.config(), c.reference());
        String where = type + " " + kernels.name() + " " + layout + " DEPLOY " + grid;
        compare(
                worst,
                Mode.DEPLOY,
                where + " fold W'",
                wantFold.weight(),
                block.foldedParameters().weight(),
                tol,
                FLOOR);
        compare(
                worst,
                Mode.DEPLOY,
                where + " fold b'",
                wantFold.bias(),
                block.foldedParameters().bias(),
                tol,
                FLOOR);
        Run got = run(block, kernels, layout, c);
        ReferenceConvBN.Gradients want =
                ReferenceConvBN.deployBackward(c.config().producer(), folded, c.x(), c.g());
        compare(
                worst,
                Mode.DEPLOY,
                where + " output",
                ReferenceConvBN.deployForward(c.config().producer(), folded, c.x()),
                got.output(),
                tol,
                FLOOR);
        compare(worst, Mode.DEPLOY, where + " dX", want.input(), got.gradients().input(), tol, FLOOR);
        want.parameters()
                .forEach((name, t) -> compare(
                        worst,
                        Mode.DEPLOY,
                        where + " d" + name,
                        t,
                        got.gradients().parameter(name),
                        tol,
                        FLOOR));
    }

    /** @return BFLOAT16 under kernels that keep feature maps in bfloat16, else the parameters' type */
    private static DataType featureType(Kernels kernels, DataType type) {
        return kernels.precision().isBf16() ? DataType.BFLOAT16 : type;
    }

    /** A block's output and gradients, in NCHW. */
    private record Run(INDArray output, BlockGradients gradients) {}

    /** Forward and backward with input and gradient in {@code layout}; the results converted back to NCHW. */
    private static Run run(ConvBNBlock block, Kernels kernels, Layout layout, Fixtures.Case c) {
        if (layout == Layout.NCHW) {
            INDArray z = block.forward(c.xNd4j());
            return new Run(z, block.backward(c.gNd4j()));
        }
        INDArray x = kernels.relayout(c.xNd4j(), layout);
        INDArray z = block.forward(x, layout);
        BlockGradients g = block.backward(kernels.relayout(c.gNd4j(), layout));
        return new Run(
                kernels.relayout(z, Layout.NCHW),
                new BlockGradients(kernels.relayout(g.input(), Layout.NCHW), g.parameters()));
    }

    @AfterAll
    static void report() {
        System.out.println("ND4J vs reference, worst relative error per mode: " + WORST);
    }

    private static void compare(
            Map<Mode, Double> worst, Mode mode, String what, Tensor want, INDArray got, double tol, double floor) {
        assertEquals(Arrays.toString(want.shape()), Arrays.toString(got.shape()), what);
        double err = RelativeError.of(want.data(), Fixtures.values(got), floor);
        synchronized (worst) {
            worst.merge(mode, err, Math::max);
        }
        assertTrue(err <= tol, () -> what + ": relative error " + err + " > " + tol);
    }
}
