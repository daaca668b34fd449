package org.convbn.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.convbn.core.ConvConfig;
import org.convbn.core.Mode;
import org.convbn.io.Safetensors;
import org.convbn.nd4j.ConvBNParameters;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.Nd4jKernels;
import org.convbn.testkit.conformance.RelativeError;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One small unit of each family against torchvision's, float64, in every mode, on the committed reference
 * {@code src/test/resources/torchvision/units.safetensors} ({@code docs/interop/zoo_units.py} wrote it): MobileNetV2's
 * inverted residual (ReLU6), MobileNetV3's (hardswish, gate with ReLU and hardsigmoid), EfficientNet's MBConv (SiLU,
 * gate with SiLU and sigmoid, stride 2) and RegNet's Y block (grouped conv, gate with ReLU and sigmoid, projection
 * shortcut, ReLU after the sum): the output, dL/dx, every parameter gradient, and in TRAIN the running statistics
 * after the step. The whole networks are compared the same way on demand ({@link ZooTorchvisionTest}).
 */
class ZooUnitsTest {
    /** Two float64 implementations of a few layers with different summation orders: rounding only. */
    static final double TOLERANCE = 1e-10;
    /**
     * Below this a tensor is 0 in exact arithmetic and both sides hold rounding noise: in TRAIN, a projection BN's
     * bias gradient where no residual follows (the next BN's batch mean removes a constant); every other tensor's
     * largest entry is far above it.
     */
    static final double ZERO = 1e-12;

    static Map<String, INDArray> reference;

    @BeforeAll
    static void read() throws IOException {
        try (InputStream in = ZooUnitsTest.class.getResourceAsStream("/torchvision/units.safetensors")) {
            assertTrue(in != null, "no units.safetensors (run docs/interop/zoo_units.py)");
            reference = Safetensors.read(in.readAllBytes()).tensors();
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({
        "v2., TRAIN",
        "v2., EVAL",
        "v2., TUNE",
        "v2., DEPLOY",
        "v3., TRAIN",
        "v3., EVAL",
        "v3., TUNE",
        "v3., DEPLOY",
        "b0., TRAIN",
        "b0., EVAL",
        "b0., TUNE",
        "b0., DEPLOY",
        "y., TRAIN",
        "y., EVAL",
        "y., TUNE",
        "y., DEPLOY"
    })
    void theUnitComputesWhatTorchvisionsComputes(String prefix, Mode mode) {
        Kernels kernels = new Nd4jKernels(DataType.DOUBLE, Arena.direct());
        MBConv unit = unit(prefix, kernels);
        load(unit, prefix);
        unit.blocks().forEach(b -> b.block().setMode(mode));
        String c = prefix + (mode == Mode.TRAIN ? "train" : "eval");
        INDArray out = unit.forward(reference.get(prefix + "input"), null);
        check(mode + " output", reference.get(c + ".out"), out);
        Map<String, INDArray> grads = new LinkedHashMap<>();
        INDArray dx = unit.backward(reference.get(prefix + "r"), GradientSink.into(grads));
        check(mode + " dL/dx", reference.get(c + ".grad.input"), dx);
        int compared = 0;
        for (Map.Entry<String, INDArray> g : grads.entrySet()) {
            INDArray expected = reference.get(c + ".grad." + g.getKey().substring(prefix.length()));
            if (mode == Mode.DEPLOY && expected == null) {
                continue; // W' and b' have no torchvision gradient; the gate's tensors do
            }
            check(mode + " d" + g.getKey(), expected, g.getValue());
            compared++;
        }
        assertTrue(compared >= (mode == Mode.DEPLOY ? 0 : 9), mode + ": " + compared + " gradients compared");
        if (mode == Mode.TRAIN) {
            for (NamedBlock b : unit.blocks()) {
                ConvBNParameters p = b.block().unfoldedParameters();
                String bn = b.bnName().substring(prefix.length());
                check(
                        "running mean " + bn,
                        reference.get(prefix + "train.after." + bn + ".running_mean"),
                        p.runningMean());
                check(
                        "running var " + bn,
                        reference.get(prefix + "train.after." + bn + ".running_var"),
                        p.runningVar());
            }
        }
    }

    /** The unit under {@code prefix} with torchvision's names, every block in EVAL. */
    private static MBConv unit(String prefix, Kernels k) {
        NetworkBuilder<?> settings =
                MobileNetV2.builder().dataType(DataType.DOUBLE).mode(Mode.EVAL);
        ConvLayers.Factory make = new ConvLayers.Factory(settings, k);
        return switch (prefix) {
            case "v2." ->
                new MBConv(
                        make.layer(prefix + "conv.0", conv(8, 48, 1, 1, 0), ConvActivation.RELU6),
                        make.layer(prefix + "conv.1", conv(48, 48, 3, 1, 1), ConvActivation.RELU6),
                        null,
                        make.layer(prefix + "conv.2", prefix + "conv.3", conv(48, 8, 1, 1, 0), ConvActivation.IDENTITY),
                        k,
                        0);
            case "v3." -> {
                ConvLayers.Factory v3 =
                        new ConvLayers.Factory(settings, k, MobileNetV3.BN_EPS, MobileNetV3.BN_MOMENTUM);
                yield new MBConv(
                        v3.layer(prefix + "block.0", conv(8, 24, 1, 1, 0), ConvActivation.HARDSWISH),
                        v3.layer(prefix + "block.1", conv(24, 24, 3, 1, 1), ConvActivation.HARDSWISH),
                        new SqueezeExcitation(
                                prefix + "block.2",
                                24,
                                8,
                                ConvActivation.RELU,
                                SqueezeExcitation.Scale.HARDSIGMOID,
                                DataType.DOUBLE,
                                1,
                                k),
                        v3.layer(prefix + "block.3", conv(24, 8, 1, 1, 0), ConvActivation.IDENTITY),
                        k,
                        0);
            }
            case "b0." ->
                new MBConv(
                        make.layer(prefix + "block.0", conv(8, 32, 1, 1, 0), ConvActivation.SILU),
                        make.layer(prefix + "block.1", conv(32, 32, 3, 2, 1), ConvActivation.SILU),
                        new SqueezeExcitation(prefix + "block.2", 32, 2, DataType.DOUBLE, 1, k),
                        make.layer(prefix + "block.3", conv(32, 16, 1, 1, 0), ConvActivation.IDENTITY),
                        k,
                        0);
            case "y." ->
                new MBConv(
                        make.layer(prefix + "f.a", conv(8, 16, 1, 1, 0), ConvActivation.RELU),
                        make.layer(prefix + "f.b", conv(16, 16, 3, 2, 8), ConvActivation.RELU),
                        new SqueezeExcitation(
                                prefix + "f.se",
                                16,
                                2,
                                ConvActivation.RELU,
                                SqueezeExcitation.Scale.SIGMOID,
                                DataType.DOUBLE,
                                1,
                                k),
                        make.layer(prefix + "f.c", conv(16, 16, 1, 1, 0), ConvActivation.IDENTITY),
                        make.layer(prefix + "proj", conv(8, 16, 1, 2, 0), ConvActivation.IDENTITY),
                        true,
                        k,
                        0);
            default -> throw new IllegalArgumentException("prefix: " + prefix);
        };
    }

    /** {@link ConvLayers#conv}: groupSize 0 dense, 1 depthwise, else input channels per group. */
    private static ConvConfig conv(int in, int out, int kernel, int stride, int groupSize) {
        return ConvLayers.conv(in, out, kernel, stride, groupSize);
    }

    /** torchvision's tensors into the unit (names without the prefix in the file's state_dict part). */
    private static void load(MBConv unit, String prefix) {
        for (NamedBlock b : unit.blocks()) {
            ConvBNParameters p = b.block().unfoldedParameters();
            p.weight().assign(reference.get(b.convName() + ".weight"));
            p.gamma().assign(reference.get(b.bnName() + ".weight"));
            p.beta().assign(reference.get(b.bnName() + ".bias"));
            p.runningMean().assign(reference.get(b.bnName() + ".running_mean"));
            p.runningVar().assign(reference.get(b.bnName() + ".running_var"));
        }
        unit.squeezeExcitation().ifPresent(se -> se.parameters().forEach((k, v) -> v.assign(reference.get(k))));
        assertEquals(
                List.of(),
                unit.layerParameters().keySet().stream()
                        .filter(k -> !reference.containsKey(k))
                        .toList(),
                "every gate tensor in the reference");
    }

    private static void check(String what, INDArray expected, INDArray actual) {
        assertTrue(expected != null, what + ": no reference");
        if (expected.amaxNumber().doubleValue() < ZERO) {
            assertTrue(
                    actual.amaxNumber().doubleValue() < ZERO,
                    what + ": expected 0 (< " + ZERO + "), got " + actual.amaxNumber());
            return;
        }
        double e = RelativeError.of(
                expected.reshape(expected.length()).toDoubleVector(),
                actual.reshape(actual.length()).toDoubleVector(),
                0);
        assertTrue(e <= TOLERANCE, what + ": relative error " + e);
    }
}
