package org.convbn.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.convbn.core.BatchNormConfig;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.convbn.core.Mode;
import org.convbn.core.TuneFold;
import org.convbn.io.Safetensors;
import org.convbn.nd4j.ConvBNBlock;
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
    @CsvSource({"v2., TRAIN", "v2., EVAL", "v2., TUNE", "v2., DEPLOY", "v3., TRAIN", "v3., EVAL", "v3., TUNE",
        "v3., DEPLOY", "b0., TRAIN", "b0., EVAL", "b0., TUNE", "b0., DEPLOY", "y., TRAIN", "y., EVAL", "y., TUNE",
        "y., DEPLOY"})
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
                check("running mean " + bn, reference.get(prefix + "train.after." + bn + ".running_mean"),
                        p.runningMean());
                check("running var " + bn, reference.get(prefix + "train.after." + bn + ".running_var"),
                        p.runningVar());
            }
        }
    }

    /** The unit under {@code prefix} with torchvision's names, every block in EVAL. */
    private static MBConv unit(String prefix, Kernels k) {
        BatchNormConfig bn = BatchNormConfig.of(1);
        return switch (prefix) {
            case "v2." -> new MBConv(layer(prefix + "conv.0", conv(8, 48, 1, 1, 0), bn, ConvActivation.RELU6, k),
                    layer(prefix + "conv.1", conv(48, 48, 3, 1, 1), bn, ConvActivation.RELU6, k), null,
                    layer(prefix + "conv.2", prefix + "conv.3", conv(48, 8, 1, 1, 0), bn, ConvActivation.IDENTITY, k),
                    k, 0);
            case "v3." -> {
                BatchNormConfig v3 = bn.withEps(MobileNetV3.BN_EPS).withMomentum(MobileNetV3.BN_MOMENTUM);
                yield new MBConv(layer(prefix + "block.0", conv(8, 24, 1, 1, 0), v3, ConvActivation.HARDSWISH, k),
                        layer(prefix + "block.1", conv(24, 24, 3, 1, 1), v3, ConvActivation.HARDSWISH, k),
                        new SqueezeExcitation(prefix + "block.2", 24, 8, ConvActivation.RELU,
                                SqueezeExcitation.Scale.HARDSIGMOID, DataType.DOUBLE, 1, k),
                        layer(prefix + "block.3", conv(24, 8, 1, 1, 0), v3, ConvActivation.IDENTITY, k), k, 0);
            }
            case "b0." -> new MBConv(layer(prefix + "block.0", conv(8, 32, 1, 1, 0), bn, ConvActivation.SILU, k),
                    layer(prefix + "block.1", conv(32, 32, 3, 2, 1), bn, ConvActivation.SILU, k),
                    new SqueezeExcitation(prefix + "block.2", 32, 2, DataType.DOUBLE, 1, k),
                    layer(prefix + "block.3", conv(32, 16, 1, 1, 0), bn, ConvActivation.IDENTITY, k), k, 0);
            case "y." -> new MBConv(layer(prefix + "f.a", conv(8, 16, 1, 1, 0), bn, ConvActivation.RELU, k),
                    layer(prefix + "f.b", conv(16, 16, 3, 2, 8), bn, ConvActivation.RELU, k),
                    new SqueezeExcitation(prefix + "f.se", 16, 2, ConvActivation.RELU, SqueezeExcitation.Scale.SIGMOID,
                            DataType.DOUBLE, 1, k),
                    layer(prefix + "f.c", conv(16, 16, 1, 1, 0), bn, ConvActivation.IDENTITY, k),
                    layer(prefix + "proj", conv(8, 16, 1, 2, 0), bn, ConvActivation.IDENTITY, k), true, k, 0);
            default -> throw new IllegalArgumentException("prefix: " + prefix);
        };
    }

    /** A bias-free conv with padding k / 2; {@code groupSize} 0 dense, 1 depthwise, else channels per group. */
    private static ConvConfig conv(int in, int out, int kernel, int stride, int groupSize) {
        ConvConfig.Builder c = ConvConfig.builder(in, out).kernel(kernel).stride(stride).padding(kernel / 2)
                .bias(false);
        return (groupSize > 0 ? c.groupSize(groupSize) : c).build();
    }

    private static ConvLayer layer(String name, ConvConfig conv, BatchNormConfig bn, ConvActivation act, Kernels k) {
        return layer(name + ".0", name + ".1", conv, bn, act, k);
    }

    private static ConvLayer layer(String convName, String bnName, ConvConfig conv, BatchNormConfig bn,
                                   ConvActivation act, Kernels k) {
        ConvBNConfig config = new ConvBNConfig(conv, new BatchNormConfig(conv.outChannels(), bn.eps(), bn.momentum(),
                true), true, TuneFold.RECOMPUTE);
        ConvBNBlock block = ConvBNBlock.of(config, ConvBNParameters.initialize(config, DataType.DOUBLE, 0), Mode.EVAL,
                k);
        return new BatchNormLayer(new NamedBlock(convName, bnName, block), act);
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
        assertEquals(List.of(), unit.layerParameters().keySet().stream().filter(k -> !reference.containsKey(k))
                .toList(), "every gate tensor in the reference");
    }

    private static void check(String what, INDArray expected, INDArray actual) {
        assertTrue(expected != null, what + ": no reference");
        if (expected.amaxNumber().doubleValue() < ZERO) {
            assertTrue(actual.amaxNumber().doubleValue() < ZERO, what + ": expected 0 (< " + ZERO + "), got "
                    + actual.amaxNumber());
            return;
        }
        double e = RelativeError.of(expected.reshape(expected.length()).toDoubleVector(),
                actual.reshape(actual.length()).toDoubleVector(), 0);
        assertTrue(e <= TOLERANCE, what + ": relative error " + e);
    }
}
