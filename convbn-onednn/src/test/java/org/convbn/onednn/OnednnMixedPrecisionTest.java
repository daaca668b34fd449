package org.convbn.onednn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.stream.Stream;
import org.convbn.core.Mode;
import org.convbn.core.Precision;
import org.convbn.core.RetainedBytes;
import org.convbn.nd4j.Fixtures;
import org.convbn.net.Network;
import org.convbn.net.SoftmaxCrossEntropy;
import org.convbn.net.StateDict;
import org.convbn.net.Zoo;
import org.convbn.testkit.conformance.RelativeError;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * One network of each family of the zoo with feature maps in bfloat16 on the oneDNN kernels
 * ({@link Precision#BF16_EMULATED}), in TUNE: the step runs every kind of layer the family has (squeeze-and-excitation
 * gates, depthwise and grouped convs, hardswish and SiLU, dropout and stochastic depth drawn), its logits and gradients stay within
 * bfloat16's rounding of the float32 network's, its feature maps are held at half the bytes, and no primitive runs a
 * reference implementation.
 */
class OnednnMixedPrecisionTest {
    /** As in the networks' mixed-precision test: one rounding to 2^-9 per stored value, measured 0.001-0.003. */
    static final double LOGITS_TOLERANCE = 0.02;

    /**
     * Relative L2 error of each gradient tensor against float32's: rounding through every layer, ReLU-like gates taking
     * the other side of zero, cancellation in the first layers' weight gradients. Measured at these networks' random
     * initialisation, worst tensor per network: EfficientNet-B0 0.02 (SiLU, smooth), MobileNetV3-Large 0.10, ResNet-18
     * 0.10, RegNetY 0.16, ResNeXt-50 0.17, MobileNetV2 0.30 (ReLU6). How sensitive each network is: scaling only the
     * float32 input by random factors within 1 +- 2^-9 moves MobileNetV2's gradients by up to 0.09, ResNet-18's 0.06,
     * EfficientNet-B0's 0.002, so bfloat16's rounding at every layer is 3-10 times one rounding of the input.
     */
    static final double GRADIENT_L2_TOLERANCE = 0.5;

    static final int[] LABELS = {3, 1};

    static Stream<String> families() {
        return Stream.of(
                "resnet18",
                "resnext50_32x4d",
                "mobilenet_v2",
                "mobilenet_v3_large",
                "efficientnet_b0",
                "regnet_y_400mf");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("families")
    void tuneInBfloat16StaysWithinItsRoundingOfFloat32(String name) {
        Nd4j.getRandom().setSeed(11);
        INDArray x = Nd4j.rand(DataType.FLOAT, 2, 3, 64, 64).subi(0.5);
        try (Network full = Zoo.create(name, 10, DataType.FLOAT, Precision.FULL, 3);
                Network bf16 = Zoo.create(name, 10, DataType.FLOAT, Precision.BF16_EMULATED, 3)) {
            StateDict.load(bf16, StateDict.of(full));
            full.setMode(Mode.TUNE);
            bf16.setMode(Mode.TUNE);
            // dropout and stochastic depth drawn: the same masks in both (each network draws from its seed)
            full.setStochastic(true);
            bf16.setStochastic(true);
            INDArray lf = full.forward(x);
            INDArray lb = bf16.forward(x);
            RetainedBytes rf = full.retainedBytes();
            RetainedBytes rb = bf16.retainedBytes();
            double logits = RelativeError.of(Fixtures.values(lf), Fixtures.values(lb), 0);
            assertTrue(logits <= LOGITS_TOLERANCE, name + " logits: relative error " + logits);
            Map<String, INDArray> gf =
                    full.backward(SoftmaxCrossEntropy.of(lf, LABELS).gradLogits());
            Map<String, INDArray> gb =
                    bf16.backward(SoftmaxCrossEntropy.of(lb, LABELS).gradLogits());
            assertEquals(gf.keySet(), gb.keySet());
            gf.forEach((k, v) -> {
                assertEquals(DataType.FLOAT, gb.get(k).dataType(), k);
                double e = RelativeError.l2(Fixtures.values(v), Fixtures.values(gb.get(k)));
                assertTrue(e <= GRADIENT_L2_TOLERANCE, name + " d" + k + ": relative L2 error " + e);
            });
            // The image (float32, kept by the first conv) aside, every feature map held is half as wide.
            assertTrue(
                    rb.activationBytes() < 0.55 * rf.activationBytes() + x.length() * 4,
                    name + ": " + rb + " against float32's " + rf);
            assertEquals(rf.weightBytes(), rb.weightBytes(), name);
            OnednnNetworkTest.assertNoReferenceImplementation(bf16.kernels());
        }
    }
}
