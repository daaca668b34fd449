package org.convbn.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;
import java.util.stream.DoubleStream;
import org.convbn.core.Mode;
import org.convbn.core.Precision;
import org.convbn.core.RetainedBytes;
import org.convbn.testkit.conformance.RelativeError;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Networks with feature maps in bfloat16 ({@link Precision#BF16_EMULATED}): every mode's logits and gradients stay
 * within what bfloat16's rounding makes of the float32 network's, EVAL and TUNE agree with each other as closely, the
 * feature maps a network keeps are bfloat16 (exactly half the bytes), and the native precision refuses where no
 * kernels compute in bfloat16. The tight checks of one block's math in bfloat16 are the block tests'.
 */
class MixedPrecisionTest {
    /**
     * Error allowed between a bfloat16 network's logits and the float32 network's ({@link RelativeError}, max-norm):
     * each stored value is rounded with a relative error up to 2^-9 (about 0.002); ResNet-18's logits come out
     * within 0.001-0.003 here.
     */
    static final double LOGITS_TOLERANCE = 0.02;

    /**
     * Relative L2 error allowed between a bfloat16 network's gradients and the float32 network's,
     * {@code ||a - b|| / ||a||}. Gradients lose more than the logits: the backward runs through twenty convs and BNs
     * each rounded, a ReLU whose input is near zero may take the other side (its gradient element then changes
     * entirely, which is why the max-norm measure does not suit), and the weight gradients of the first layers are
     * sums with cancellation. Measured 0.002-0.13 (the largest in conv1.weight) over every tensor and mode here;
     * a value stored without rounding, read through the wrong type or dropped is off by far more.
     */
    static final double GRADIENT_L2_TOLERANCE = 0.25;

    /**
     * TRAIN normalises with the statistics of a batch of two images, which makes its step ill-conditioned whatever
     * the precision: in float32, scaling the input by random factors within 1 +- 2^-9 (one bfloat16 rounding) moves
     * TRAIN's gradients by 0.18 in relative L2 and EVAL's by 0.0015. Rounding every feature map so moves TRAIN's
     * logits 0.037 and its gradients (all tensors together) 0.43 here, so TRAIN is held to its logits and to its
     * gradients as a whole, with bounds that still fail for a map stored unrounded by the wrong type (errors of order
     * one or NaN).
     */
    static final double TRAIN_LOGITS_TOLERANCE = 0.1;

    /** See {@link #TRAIN_LOGITS_TOLERANCE}. */
    static final double TRAIN_GRADIENTS_L2_TOLERANCE = 0.75;

    static final int[] LABELS = {3, 7};

    private static INDArray input() {
        Nd4j.getRandom().setSeed(5);
        // 64x64: layer4's maps are 2x2, so TRAIN's batch statistics there average 8 values per channel (at 1x1 the
        // two values of a channel normalise to -1 and 1, and rounding may swap which is which).
        return Nd4j.rand(DataType.FLOAT, 2, 3, 64, 64).subi(0.5);
    }

    private static ResNet resnet18(Mode mode, Precision precision) {
        ResNet net = ResNet.builder(ResNet.Variant.RESNET18)
                .classes(10)
                .seed(9)
                .mode(mode)
                .precision(precision)
                .build();
        ResNetTest.randomiseStatistics(net);
        return net;
    }

    private record Step(INDArray logits, Map<String, INDArray> gradients, RetainedBytes retained) {}

    private static Step step(Network net, INDArray x) {
        INDArray logits = net.forward(x);
        RetainedBytes retained = net.retainedBytes();
        Map<String, INDArray> g =
                net.backward(SoftmaxCrossEntropy.of(logits, LABELS).gradLogits());
        return new Step(logits.dup(), g, retained);
    }

    /** TRAIN's check: the logits, and all gradients together (see {@link #TRAIN_LOGITS_TOLERANCE}). */
    private static void assertCloseInTrain(Step expected, Step actual) {
        double logits = RelativeError.of(EvalTuneSteps.flat(expected.logits()), EvalTuneSteps.flat(actual.logits()), 0);
        assertTrue(logits <= TRAIN_LOGITS_TOLERANCE, "TRAIN logits: relative error " + logits);
        assertEquals(expected.gradients().keySet(), actual.gradients().keySet());
        double error = RelativeError.l2(
                allValues(expected.gradients(), expected.gradients().keySet()),
                allValues(actual.gradients(), expected.gradients().keySet()));
        assertTrue(error <= TRAIN_GRADIENTS_L2_TOLERANCE, "TRAIN gradients: relative L2 error " + error);
    }

    private static void assertClose(Step expected, Step actual, String what) {
        double logits = RelativeError.of(EvalTuneSteps.flat(expected.logits()), EvalTuneSteps.flat(actual.logits()), 0);
        assertTrue(logits <= LOGITS_TOLERANCE, what + " logits: relative error " + logits);
        assertEquals(expected.gradients().keySet(), actual.gradients().keySet());
        expected.gradients().forEach((k, v) -> {
            double e = RelativeError.l2(
                    EvalTuneSteps.flat(v), EvalTuneSteps.flat(actual.gradients().get(k)));
            assertTrue(e <= GRADIENT_L2_TOLERANCE, what + " " + k + ": relative L2 error " + e);
        });
    }

    /** @return the values of every tensor named in {@code names}, in that order, one after the other */
    private static double[] allValues(Map<String, INDArray> tensors, Set<String> names) {
        return names.stream()
                .flatMapToDouble(k -> DoubleStream.of(EvalTuneSteps.flat(tensors.get(k))))
                .toArray();
    }

    @ParameterizedTest
    @EnumSource(
            value = Mode.class,
            names = {"TRAIN", "EVAL", "DEPLOY", "TUNE"})
    void everyModeInBfloat16StaysWithinItsRoundingOfFloat32(Mode mode) {
        INDArray x = input();
        try (ResNet full = resnet18(mode, Precision.FULL);
                ResNet bf16 = resnet18(mode, Precision.BF16_EMULATED)) {
            if (mode == Mode.TRAIN) {
                assertCloseInTrain(step(full, x), step(bf16, x));
            } else {
                assertClose(step(full, x), step(bf16, x), mode + " bf16 vs float32");
            }
        }
    }

    @Test
    void evalAndTuneInBfloat16AgreeAndTuneKeepsHalfOfFloat32() {
        INDArray x = input();
        long image = x.length() * 4; // the first conv keeps the image it is given, float32
        long pooled = x.size(0) * 512 * 4; // the pooled features the classifier keeps are float32
        try (ResNet eval = resnet18(Mode.EVAL, Precision.BF16_EMULATED);
                ResNet tune = resnet18(Mode.TUNE, Precision.BF16_EMULATED);
                ResNet tuneFull = resnet18(Mode.TUNE, Precision.FULL)) {
            Step e = step(eval, x);
            Step t = step(tune, x);
            Step f = step(tuneFull, x);
            assertClose(f, t, "TUNE bf16 vs float32");
            assertClose(e, t, "EVAL vs TUNE in bf16");
            assertEquals(
                    (f.retained().activationBytes() - image - pooled) / 2 + image + pooled,
                    t.retained().activationBytes(),
                    "TUNE's feature maps in bf16: half of float32's beyond the image and the pooled features");
            assertEquals(f.retained().weightBytes(), t.retained().weightBytes(), "per-channel vectors stay float32");
            assertTrue(t.retained().activationBytes() < e.retained().activationBytes());
            t.gradients().values().forEach(g -> assertEquals(DataType.FLOAT, g.dataType()));
        }
    }

    @Test
    void nativeBfloat16RefusesNamingWhatItFound() {
        Supplier<ResNet> build = () -> ResNet.builder(ResNet.Variant.RESNET18)
                .precision(Precision.BF16_MIXED)
                .build();
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class, build::get);
        assertTrue(e.getMessage().contains("BF16_MIXED") && e.getMessage().contains("BF16_EMULATED"), e.getMessage());
        assertTrue(e.getMessage().contains("isa") || e.getMessage().contains("nd4j"), e.getMessage());
    }

    @Test
    void reversibleStagesStayInFullPrecision() {
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> ResNet.builder(ResNet.Variant.RESNET18)
                        .reversible(0.25)
                        .precision(Precision.BF16_EMULATED)
                        .build());
        assertTrue(e.getMessage().startsWith("precision: reversible stages"), e.getMessage());
    }

    @Test
    void bfloat16NeedsFloat32Parameters() {
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> ResNet.builder(ResNet.Variant.RESNET18)
                        .dataType(DataType.DOUBLE)
                        .precision(Precision.BF16_EMULATED)
                        .build());
        assertTrue(e.getMessage().startsWith("dataType: expected FLOAT"), e.getMessage());
    }
}
