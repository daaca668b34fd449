package org.convbn.nd4j;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.convbn.core.BatchNormConfig;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.convbn.core.IllegalModeTransitionException;
import org.convbn.core.Mode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/** Every bad input gets an exception that names the argument and says what was expected and what came. */
class ValidationTest {
    private static final ConvBNConfig CONFIG =
            ConvBNConfig.of(ConvConfig.builder(3, 4).kernel(3).padding(1).build());

    private static ConvBNBlock block(Mode mode) {
        return ConvBNBlock.of(CONFIG, ConvBNParameters.initialize(CONFIG, DataType.FLOAT, 1), mode);
    }

    private static void fails(Class<? extends Throwable> type, Executable call, String... fragments) {
        Throwable t = assertThrows(type, call);
        for (String f : fragments) {
            assertTrue(t.getMessage().contains(f), () -> "message '" + t.getMessage() + "' lacks '" + f + "'");
        }
    }

    @Test
    void wrongRank() {
        fails(
                IllegalArgumentException.class,
                () -> block(Mode.EVAL).forward(Nd4j.rand(DataType.FLOAT, 3, 8, 8)),
                "x:",
                "rank 4",
                "got rank 3");
    }

    @Test
    void wrongChannels() {
        fails(
                IllegalArgumentException.class,
                () -> block(Mode.TUNE).forward(Nd4j.rand(DataType.FLOAT, 2, 5, 8, 8)),
                "x:",
                "expected 3 channels",
                "got 5");
    }

    @Test
    void inputSmallerThanKernel() {
        ConvBNConfig valid = ConvBNConfig.of(ConvConfig.builder(3, 4).kernel(5).build());
        ConvBNBlock b = ConvBNBlock.of(valid, ConvBNParameters.initialize(valid, DataType.FLOAT, 1), Mode.EVAL);
        fails(
                IllegalArgumentException.class,
                () -> b.forward(Nd4j.rand(DataType.FLOAT, 1, 3, 4, 8)),
                "x:",
                "smaller than the dilated kernel 5x5",
                "got 0x4");
    }

    @Test
    void dtypeMismatchOfInput() {
        fails(
                IllegalArgumentException.class,
                () -> block(Mode.EVAL).forward(Nd4j.rand(DataType.DOUBLE, 2, 3, 8, 8)),
                "x:",
                "expected data type FLOAT",
                "got DOUBLE");
    }

    @Test
    void dtypeMismatchOfParameters() {
        ConvBNParameters p = ConvBNParameters.initialize(CONFIG, DataType.FLOAT, 1);
        ConvBNParameters mixed = ConvBNParameters.of(
                p.weight(), p.bias(), p.gamma().castTo(DataType.DOUBLE), p.beta(), p.runningMean(), p.runningVar());
        fails(
                IllegalArgumentException.class,
                () -> ConvBNBlock.of(CONFIG, mixed, Mode.EVAL),
                "bn.weight",
                "expected data type FLOAT",
                "got DOUBLE");
    }

    @Test
    void unsupportedDataType() {
        fails(
                IllegalArgumentException.class,
                () -> ConvBNParameters.initialize(CONFIG, DataType.HALF, 1),
                "dataType",
                "FLOAT or DOUBLE",
                "HALF");
    }

    @Test
    void wrongParameterShape() {
        ConvBNParameters p = ConvBNParameters.initialize(CONFIG, DataType.FLOAT, 1);
        ConvBNParameters bad = ConvBNParameters.of(
                Nd4j.rand(DataType.FLOAT, 4, 3, 5, 5), p.bias(), p.gamma(), p.beta(), p.runningMean(), p.runningVar());
        fails(
                IllegalArgumentException.class,
                () -> ConvBNBlock.of(CONFIG, bad, Mode.EVAL),
                "conv.weight",
                "[4, 3, 3, 3]",
                "[4, 3, 5, 5]");
    }

    @Test
    void biasGivenToABiasFreeConv() {
        ConvBNConfig noBias =
                ConvBNConfig.of(ConvConfig.builder(3, 4).bias(false).build());
        ConvBNParameters p = ConvBNParameters.initialize(CONFIG, DataType.FLOAT, 1);
        fails(IllegalArgumentException.class, () -> ConvBNBlock.of(noBias, p, Mode.EVAL), "conv.bias", "expected null");
    }

    @Test
    void epsMustBePositive() {
        fails(IllegalArgumentException.class, () -> new BatchNormConfig(4, 0, 0.1, true), "eps", "> 0", "got 0.0");
        fails(IllegalArgumentException.class, () -> BatchNormConfig.of(4).withEps(-1e-5), "eps", "got -1.0E-5");
        fails(IllegalArgumentException.class, () -> BatchNormConfig.of(4).withEps(Double.NaN), "eps", "got NaN");
    }

    @Test
    void momentumOutOfRange() {
        fails(IllegalArgumentException.class, () -> BatchNormConfig.of(4).withMomentum(1.5), "momentum", "[0, 1]");
    }

    @Test
    void convConfigRanges() {
        fails(
                IllegalArgumentException.class,
                () -> ConvConfig.builder(4, 6).groups(4).build(),
                "groups",
                "divisor of outChannels=6",
                "got 4");
        fails(
                IllegalArgumentException.class,
                () -> ConvConfig.builder(3, 3).stride(0).build(),
                "strideH",
                "got 0");
        fails(
                IllegalArgumentException.class,
                () -> ConvConfig.builder(3, 3).padding(-1).build(),
                "padding.h");
        fails(
                IllegalArgumentException.class,
                () -> new ConvBNConfig(ConvConfig.builder(3, 4).build(), BatchNormConfig.of(5), true),
                "bn.channels",
                "expected conv output channels = 4",
                "got 5");
    }

    @Test
    void negativeRunningVariance() {
        ConvBNParameters p = ConvBNParameters.initialize(CONFIG, DataType.FLOAT, 1);
        p.runningVar().putScalar(2, -0.5);
        fails(
                IllegalArgumentException.class,
                () -> ConvBNBlock.of(CONFIG, p, Mode.EVAL),
                "bn.running_var",
                "expected values >= 0",
                "-0.5 at channel 2");
    }

    @Test
    void negativeRunningVarianceAtFoldTime() {
        ConvBNBlock b = block(Mode.EVAL);
        b.unfoldedParameters().runningVar().putScalar(1, -2.0);
        fails(IllegalArgumentException.class, () -> b.setMode(Mode.DEPLOY), "bn.running_var", "-2.0 at channel 1");
    }

    @Test
    void nanOrInfinityWhenFolding() {
        ConvBNBlock b = block(Mode.EVAL);
        b.unfoldedParameters().weight().putScalar(new long[] {1, 2, 0, 1}, Float.NaN);
        fails(
                IllegalArgumentException.class,
                () -> b.setMode(Mode.DEPLOY),
                "conv.weight",
                "expected finite values",
                "NaN");
        ConvBNBlock t = block(Mode.TUNE);
        t.unfoldedParameters().gamma().putScalar(3, Float.POSITIVE_INFINITY);
        fails(
                IllegalArgumentException.class,
                () -> t.forward(Nd4j.rand(DataType.FLOAT, 1, 3, 4, 4)),
                "bn.weight",
                "Infinity",
                "flat index 3");
    }

    @Test
    void backwardBeforeForward() {
        fails(
                IllegalStateException.class,
                () -> block(Mode.TUNE).backward(Nd4j.ones(DataType.FLOAT, 1, 4, 4, 4)),
                "backward",
                "pending forward",
                "got none");
    }

    @Test
    void backwardTwice() {
        ConvBNBlock b = block(Mode.EVAL);
        b.forward(Nd4j.rand(DataType.FLOAT, 1, 3, 4, 4));
        b.backward(Nd4j.ones(DataType.FLOAT, 1, 4, 4, 4));
        fails(IllegalStateException.class, () -> b.backward(Nd4j.ones(DataType.FLOAT, 1, 4, 4, 4)), "pending forward");
    }

    @Test
    void backwardWithWrongGradientShape() {
        ConvBNBlock b = block(Mode.TUNE);
        b.forward(Nd4j.rand(DataType.FLOAT, 2, 3, 4, 4));
        fails(
                IllegalArgumentException.class,
                () -> b.backward(Nd4j.ones(DataType.FLOAT, 2, 4, 4, 5)),
                "gradOutput",
                "[2, 4, 4, 4]",
                "[2, 4, 4, 5]");
    }

    @Test
    void backwardWithWrongGradientType() {
        ConvBNBlock b = block(Mode.DEPLOY);
        b.forward(Nd4j.rand(DataType.FLOAT, 2, 3, 4, 4));
        fails(
                IllegalArgumentException.class,
                () -> b.backward(Nd4j.ones(DataType.DOUBLE, 2, 4, 4, 4)),
                "gradOutput",
                "FLOAT",
                "DOUBLE");
    }

    @Test
    void trainWithOneValuePerChannel() {
        ConvBNConfig oneByOne =
                ConvBNConfig.of(ConvConfig.builder(3, 4).kernel(1).build());
        ConvBNBlock b = ConvBNBlock.of(oneByOne, ConvBNParameters.initialize(oneByOne, DataType.FLOAT, 1), Mode.TRAIN);
        fails(
                IllegalArgumentException.class,
                () -> b.forward(Nd4j.rand(DataType.FLOAT, 1, 3, 1, 1)),
                "TRAIN",
                "more than one value per channel");
    }

    @Test
    void leavingDeployWithoutKeptTensors() {
        ConvBNConfig dropping = CONFIG.withKeepUnfolded(false);
        ConvBNBlock b = ConvBNBlock.of(dropping, ConvBNParameters.initialize(dropping, DataType.FLOAT, 1), Mode.DEPLOY);
        IllegalModeTransitionException e =
                assertThrows(IllegalModeTransitionException.class, () -> b.setMode(Mode.TUNE));
        assertTrue(
                e.getMessage().contains("DEPLOY -> TUNE") && e.getMessage().contains("keepUnfolded"), e.getMessage());
    }

    @Test
    void unfoldedParametersInDeploy() {
        fails(IllegalStateException.class, () -> block(Mode.DEPLOY).unfoldedParameters(), "DEPLOY");
    }
}
