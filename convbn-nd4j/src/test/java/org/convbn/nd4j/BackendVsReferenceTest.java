package org.convbn.nd4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.EnumMap;
import java.util.Map;
import java.util.stream.Stream;

import org.convbn.core.Mode;
import org.convbn.core.conformance.ConfigGrid;
import org.convbn.core.conformance.RelativeError;
import org.convbn.core.reference.ReferenceConvBN;
import org.convbn.core.reference.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The ND4J block against the float64 reference on the full grid, every mode, forward, running statistics and
 * all gradients, in float64 and float32.
 */
class BackendVsReferenceTest {
    /** float64: the two implementations sum the same products in different orders. */
    static final double FLOAT64_TOLERANCE = 1e-10;
    /**
     * float32 against float64 on the same (rounded) inputs: unit roundoff 6e-8, sums of up to
     * C/groups*kH*kW = 36 products, the BN rescale by s up to ~45 (eps 1e-3) and, in TRAIN, division by a batch
     * standard deviation of as few as 4 values per channel; measured worst 3e-5 in TRAIN, 6e-7 in the other modes.
     */
    static final double FLOAT32_TOLERANCE = 1e-4;
    /** Tensors whose largest value is below this are compared in absolute terms. */
    static final double FLOOR = 0.1;
    /**
     * Floor for TRAIN's conv bias gradient in float32. It is zero in exact arithmetic (BN removes any per-channel
     * constant); in float32 it is the cancellation residue of sum(dY) over up to 70 values per channel whose
     * terms reach ~10, i.e. ~70 * 10 * 6e-8 = 4e-5 per term sum, measured up to 1.8e-4. Relative to this floor the
     * tolerance bounds that residue by 1e-4 * 10 = 1e-3.
     */
    static final double TRAIN_BIAS_FLOAT32_FLOOR = 10;

    private static final Map<DataType, Map<Mode, Double>> WORST = Map.of(DataType.DOUBLE, new EnumMap<>(Mode.class),
            DataType.FLOAT, new EnumMap<>(Mode.class));

    static Stream<Arguments> cases() {
        return ConfigGrid.full().stream().flatMap(c -> Stream.of(Arguments.of(c, DataType.DOUBLE),
                Arguments.of(c, DataType.FLOAT)));
    }

    @ParameterizedTest(name = "{1} {0}")
    @MethodSource("cases")
    void everyModeMatchesTheReference(ConfigGrid.Case grid, DataType type) {
        double tol = type == DataType.DOUBLE ? FLOAT64_TOLERANCE : FLOAT32_TOLERANCE;
        for (Mode mode : new Mode[] {Mode.TRAIN, Mode.EVAL, Mode.TUNE}) {
            Fixtures.Case c = Fixtures.random(grid.config(), grid.inputShape(), type, 100);
            ReferenceConvBN.Forward want = ReferenceConvBN.forward(c.config(), mode, c.reference(), c.x());
            ReferenceConvBN.Gradients wantGrads = ReferenceConvBN.backward(c.config(), mode, c.reference(), c.x(), c.g());
            ConvBNBlock block = ConvBNBlock.of(c.config(), c.nd4j(), mode);
            INDArray z = block.forward(c.xNd4j());
            BlockGradients got = block.backward(c.gNd4j());
            String where = type + " " + mode + " " + grid;
            compare(type, mode, where + " output", want.output(), z, tol);
            compare(type, mode, where + " running mean", want.runningMean(), c.nd4j().runningMean(), tol);
            compare(type, mode, where + " running var", want.runningVar(), c.nd4j().runningVar(), tol);
            compare(type, mode, where + " dX", wantGrads.input(), got.input(), tol);
            assertEquals(wantGrads.parameters().keySet(), got.parameters().keySet(), where);
            wantGrads.parameters().forEach((name, t) -> {
                boolean cancelled = mode == Mode.TRAIN && type == DataType.FLOAT
                        && name.equals(org.convbn.core.ParameterNames.CONV_BIAS);
                compare(type, mode, where + " d" + name, t, got.parameter(name), tol,
                        cancelled ? TRAIN_BIAS_FLOAT32_FLOOR : FLOOR);
            });
        }
        Fixtures.Case c = Fixtures.random(grid.config(), grid.inputShape(), type, 200);
        ConvBNBlock block = ConvBNBlock.of(c.config(), c.nd4j(), Mode.DEPLOY);
        ReferenceConvBN.Folded folded = new ReferenceConvBN.Folded(Fixtures.toTensor(block.foldedParameters().weight()),
                Fixtures.toTensor(block.foldedParameters().bias()));
        ReferenceConvBN.Folded wantFold = ReferenceConvBN.fold(c.config(), c.reference());
        compare(type, Mode.DEPLOY, "DEPLOY fold W' " + grid, wantFold.weight(), block.foldedParameters().weight(), tol);
        compare(type, Mode.DEPLOY, "DEPLOY fold b' " + grid, wantFold.bias(), block.foldedParameters().bias(), tol);
        INDArray z = block.forward(c.xNd4j());
        BlockGradients got = block.backward(c.gNd4j());
        ReferenceConvBN.Gradients want = ReferenceConvBN.deployBackward(c.config().conv(), folded, c.x(), c.g());
        compare(type, Mode.DEPLOY, type + " DEPLOY output " + grid,
                ReferenceConvBN.deployForward(c.config().conv(), folded, c.x()), z, tol);
        compare(type, Mode.DEPLOY, type + " DEPLOY dX " + grid, want.input(), got.input(), tol);
        want.parameters().forEach((name, t) -> compare(type, Mode.DEPLOY, type + " DEPLOY d" + name + " " + grid, t,
                got.parameter(name), tol));
    }

    @AfterAll
    static void report() {
        System.out.println("ND4J vs reference, worst relative error per mode: " + WORST);
    }

    private static void compare(DataType type, Mode mode, String what, Tensor want, INDArray got, double tol) {
        compare(type, mode, what, want, got, tol, FLOOR);
    }

    private static void compare(DataType type, Mode mode, String what, Tensor want, INDArray got, double tol,
                                double floor) {
        assertEquals(java.util.Arrays.toString(want.shape()), java.util.Arrays.toString(got.shape()), what);
        double err = RelativeError.of(want.data(), Fixtures.values(got), floor);
        synchronized (WORST) {
            WORST.get(type).merge(mode, err, Math::max);
        }
        assertTrue(err <= tol, () -> what + ": relative error " + err + " > " + tol);
    }
}
