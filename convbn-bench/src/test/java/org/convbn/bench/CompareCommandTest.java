package org.convbn.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.Mode;
import org.convbn.core.ProducerConfig;
import org.convbn.io.Safetensors;
import org.convbn.testkit.conformance.ConfigGrid;
import org.convbn.testkit.conformance.RandomCase;
import org.convbn.testkit.conformance.RelativeError;
import org.convbn.testkit.reference.ReferenceConvBN;
import org.convbn.testkit.reference.ReferenceParameters;
import org.convbn.testkit.reference.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine;

/**
 * The compare command on cases written from the tensor semantics: a stride-2, padded, grouped block with conv bias
 * and affine BN, its expected results computed by the float64 reference.
 */
class CompareCommandTest {
    /** float64 block against the float64 reference: summation order only. */
    static final double FLOAT64_TOLERANCE = 1e-10;

    static final double FLOOR = 0.1;

    /** A grid case: k3 s2 p1 d1 groups 2, conv bias, affine (eps 1e-3 as the grid's). */
    private static ConfigGrid.Case gridCase() {
        return ConfigGrid.full().stream()
                .filter(c -> c.config().conv().kernelH() == 3
                        && c.config().conv().strideH() == 2
                        && !c.config().conv().padding().isSame()
                        && c.config().conv().padding().h() == 1
                        && c.config().conv().dilationH() == 1
                        && c.config().conv().groups() == 2
                        && c.config().conv().bias()
                        && c.config().bn().affine())
                .findFirst()
                .orElseThrow();
    }

    @ParameterizedTest
    @EnumSource(Mode.class)
    void everyModeMatchesTheReference(Mode mode, @TempDir Path dir) throws IOException {
        check(
                gridCase(),
                Map.of(
                        "stride",
                        "2,2",
                        "padding",
                        "1,1",
                        "dilation",
                        "1,1",
                        "groups",
                        "2",
                        "eps",
                        "0.001",
                        "momentum",
                        "0.1"),
                mode,
                dir);
    }

    /** A grouped, strided, padded transposed conv with output padding, conv bias and affine BN. */
    @ParameterizedTest
    @EnumSource(Mode.class)
    void transposedConvCasesMatchTheReference(Mode mode, @TempDir Path dir) throws IOException {
        check(
                ConfigGrid.transposed(4, 8, 3, 2, 1, 1, 1, 2, true, true),
                Map.of(
                        "layer",
                        "conv_transpose2d",
                        "stride",
                        "2,2",
                        "padding",
                        "1,1",
                        "output_padding",
                        "1,1",
                        "dilation",
                        "1,1",
                        "groups",
                        "2",
                        "eps",
                        "0.001",
                        "momentum",
                        "0.1"),
                mode,
                dir);
    }

    /** Linear + BatchNorm1d on [N, I, L] with a bias. */
    @ParameterizedTest
    @EnumSource(Mode.class)
    void linearCasesMatchTheReference(Mode mode, @TempDir Path dir) throws IOException {
        ConfigGrid.Case grid = ConfigGrid.linear().stream()
                .filter(c -> c.inputShape().length == 3
                        && c.config().producer().bias()
                        && c.config().bn().affine())
                .findFirst()
                .orElseThrow();
        check(grid, Map.of("layer", "linear", "eps", "0.001", "momentum", "0.1"), mode, dir);
    }

    /** Writes the grid case as a compare case, runs the command and compares every result with the reference. */
    private static void check(ConfigGrid.Case grid, Map<String, String> meta, Mode mode, Path dir) throws IOException {
        ConvBNConfig config = grid.config();
        ProducerConfig producer = config.producer();
        ReferenceParameters p = RandomCase.parameters(config, 7);
        Tensor x = RandomCase.tensor(grid.inputShape(), 8);
        Tensor g = RandomCase.tensor(producer.outputShape(grid.inputShape()), 9);
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        tensors.put("input", nd(x));
        tensors.put(producer.weightName(), nd(p.weight()));
        if (p.bias() != null) {
            tensors.put(producer.biasName(), nd(p.bias()));
        }
        if (p.gamma() != null) {
            tensors.put("bn.weight", nd(p.gamma()));
            tensors.put("bn.bias", nd(p.beta()));
        }
        tensors.put("bn.running_mean", nd(p.runningMean()));
        tensors.put("bn.running_var", nd(p.runningVar()));
        tensors.put("grad_output", nd(g));
        Path in = dir.resolve("case.safetensors");
        Path out = dir.resolve("result.safetensors");
        Safetensors.write(in, tensors, meta);

        int rc = new CommandLine(new CompareCommand())
                .setCaseInsensitiveEnumValuesAllowed(true)
                .execute(
                        "--in", in.toString(), "--mode", mode.name().toLowerCase(Locale.ROOT), "--out", out.toString());
        assertEquals(0, rc);
        Map<String, INDArray> got = Safetensors.read(out).tensors();

        Map<String, Tensor> want = new LinkedHashMap<>();
        if (mode == Mode.DEPLOY) {
            ReferenceConvBN.Folded folded = ReferenceConvBN.fold(config, p);
            want.put("output", ReferenceConvBN.deployForward(producer, folded, x));
            ReferenceConvBN.Gradients gr = ReferenceConvBN.deployBackward(producer, folded, x, g);
            want.put("grad_input", gr.input());
            gr.parameters().forEach((k, v) -> want.put("grad." + k, v));
            want.put("folded.weight", folded.weight());
            want.put("folded.bias", folded.bias());
        } else {
            ReferenceConvBN.Forward f = ReferenceConvBN.forward(config, mode, p, x);
            want.put("output", f.output());
            ReferenceConvBN.Gradients gr = ReferenceConvBN.backward(config, mode, p, x, g);
            want.put("grad_input", gr.input());
            gr.parameters().forEach((k, v) -> want.put("grad." + k, v));
            if (mode == Mode.TRAIN) {
                want.put("bn.running_mean", f.runningMean());
                want.put("bn.running_var", f.runningVar());
            }
        }
        assertEquals(want.keySet(), got.keySet());
        want.forEach((name, t) -> {
            assertArrayEquals(
                    Arrays.stream(t.shape()).asLongStream().toArray(),
                    got.get(name).shape(),
                    name);
            double err = RelativeError.of(t.data(), got.get(name).dup().data().asDouble(), FLOOR);
            assertTrue(
                    err <= FLOAT64_TOLERANCE,
                    () -> producer.kind() + " " + mode + " " + name + ": relative error " + err);
        });
        if (mode == Mode.DEPLOY) {
            assertTrue(got.keySet().containsAll(Set.of("grad.folded.weight", "grad.folded.bias")));
        } else {
            assertTrue(got.containsKey("grad." + producer.weightName()), "named as PyTorch names the module");
        }
    }

    @Test
    void badCasesAreNamed() {
        Map<String, INDArray> t = new LinkedHashMap<>();
        t.put("input", Nd4j.rand(DataType.DOUBLE, 1, 2, 5, 5));
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> CompareCommand.run(t, Map.of(), Mode.EVAL));
        assertTrue(e.getMessage().startsWith("conv.weight: expected in the case file"), e.getMessage());
        t.put("conv.weight", Nd4j.rand(DataType.DOUBLE, 3, 2, 3, 3));
        t.put("bn.running_mean", Nd4j.zeros(DataType.DOUBLE, 3));
        t.put("bn.running_var", Nd4j.ones(DataType.FLOAT, 3));
        t.put("grad_output", Nd4j.rand(DataType.DOUBLE, 1, 3, 3, 3));
        e = assertThrows(IllegalArgumentException.class, () -> CompareCommand.run(t, Map.of(), Mode.EVAL));
        assertTrue(e.getMessage().contains("bn.running_var: expected DOUBLE like input, got FLOAT"), e.getMessage());
        t.put("bn.running_var", Nd4j.ones(DataType.DOUBLE, 3));
        e = assertThrows(
                IllegalArgumentException.class, () -> CompareCommand.run(t, Map.of("stride", "two"), Mode.EVAL));
        assertTrue(e.getMessage().contains("metadata stride"), e.getMessage());
        assertEquals(
                Set.of("output", "grad_input", "grad.conv.weight"),
                CompareCommand.run(t, Map.of(), Mode.TUNE).keySet());
        e = assertThrows(
                IllegalArgumentException.class, () -> CompareCommand.run(t, Map.of("layer", "conv3d"), Mode.EVAL));
        assertTrue(
                e.getMessage().contains("metadata layer: expected conv2d, conv_transpose2d or linear"), e.getMessage());

        Map<String, INDArray> linear = new LinkedHashMap<>();
        linear.put("input", Nd4j.rand(DataType.DOUBLE, 4, 5));
        linear.put("linear.weight", Nd4j.rand(DataType.DOUBLE, 6, 5));
        linear.put("bn.running_mean", Nd4j.zeros(DataType.DOUBLE, 5));
        linear.put("bn.running_var", Nd4j.ones(DataType.DOUBLE, 5));
        linear.put("grad_output", Nd4j.rand(DataType.DOUBLE, 4, 6));
        e = assertThrows(
                IllegalArgumentException.class, () -> CompareCommand.run(linear, Map.of("layer", "linear"), Mode.EVAL));
        assertTrue(e.getMessage().contains("bn.channels: expected linear output features = 6"), e.getMessage());
        linear.put("input", Nd4j.rand(DataType.DOUBLE, 4, 5, 2, 2));
        e = assertThrows(
                IllegalArgumentException.class, () -> CompareCommand.run(linear, Map.of("layer", "linear"), Mode.EVAL));
        assertTrue(e.getMessage().contains("input: expected [N,I] or [N,I,L]"), e.getMessage());
    }

    private static INDArray nd(Tensor t) {
        long[] shape = Arrays.stream(t.shape()).asLongStream().toArray();
        return Nd4j.create(t.data(), shape, DataType.DOUBLE);
    }
}
