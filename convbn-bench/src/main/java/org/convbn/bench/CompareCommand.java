package org.convbn.bench;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import org.convbn.core.BatchNormConfig;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.convbn.core.ConvTransposeConfig;
import org.convbn.core.LinearConfig;
import org.convbn.core.Mode;
import org.convbn.core.Padding;
import org.convbn.core.ProducerConfig;
import org.convbn.io.Safetensors;
import org.convbn.nd4j.BlockGradients;
import org.convbn.nd4j.ConvBNBlock;
import org.convbn.nd4j.ConvBNParameters;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Runs one forward and one backward of a single block on tensors from a safetensors file (e.g. exported from
 * PyTorch) and writes what the block computed, for comparison with the exporter's own results.
 *
 * <p>The metadata key {@code layer} names the layer BN follows: {@code conv2d} (the default),
 * {@code conv_transpose2d} or {@code linear}. Input tensors: {@code input} [N,C,H,W] ([N,I] or [N,I,L] for linear);
 * the layer's weight, {@code conv.weight} [O,C/groups,kH,kW] for conv2d, [C,O/groups,kH,kW] for conv_transpose2d
 * (PyTorch's layouts), {@code linear.weight} [O,I]; optional bias {@code conv.bias} / {@code linear.bias};
 * {@code bn.weight} and {@code bn.bias} (both or neither), {@code bn.running_mean}, {@code bn.running_var} [O],
 * {@code grad_output} shaped as the output; all F32 or all F64, computed in that type. Metadata for the convs:
 * {@code stride} "sH,sW", {@code padding} "pH,pW" (or "same" for conv2d), {@code output_padding} "oH,oW"
 * (conv_transpose2d), {@code dilation} "dH,dW", {@code groups}; for all: {@code eps}, {@code momentum}
 * (defaults 1,1 / 0,0 / 0,0 / 1,1 / 1 / 1e-5 / 0.1).
 *
 * <p>Output tensors: {@code output}, {@code grad_input}, {@code grad.conv.weight} or {@code grad.linear.weight},
 * the bias gradient likewise (with a bias), {@code grad.bn.weight}, {@code grad.bn.bias} (with affine BN); in train mode also the updated
 * {@code bn.running_mean} and {@code bn.running_var}; in deploy mode {@code grad.folded.weight} and
 * {@code grad.folded.bias} (gradients of the folded parameters) and {@code folded.weight}, {@code folded.bias}
 * instead of the conv and BN gradients.
 */
@Command(
        name = "compare",
        mixinStandardHelpOptions = true,
        description = "Run one block forward and backward on a safetensors case; write the results.")
final class CompareCommand implements Callable<Integer> {
    @Option(names = "--in", required = true, description = "the case (safetensors)")
    Path in;

    @Option(names = "--mode", required = true, description = "train, eval, tune or deploy")
    Mode mode;

    @Option(names = "--out", required = true, description = "where to write the results (safetensors)")
    Path out;

    @Override
    public Integer call() throws Exception {
        Safetensors.Contents c = Safetensors.read(in);
        Map<String, INDArray> result = run(c.tensors(), c.metadata(), mode);
        Map<String, String> meta = new LinkedHashMap<>(c.metadata());
        meta.put("mode", mode.name().toLowerCase(Locale.ROOT));
        meta.put("producer", "convbn compare");
        Safetensors.write(out, result, meta);
        System.out.println("wrote " + out + ": " + String.join(", ", result.keySet()));
        return 0;
    }

    /**
     * @param t the case's tensors, not modified
     * @param meta the case's metadata, not modified
     * @return the results by name
     * @throws IllegalArgumentException naming a missing, mis-typed or mis-shaped tensor or a bad metadata value
     */
    static Map<String, INDArray> run(Map<String, INDArray> t, Map<String, String> meta, Mode mode) {
        INDArray input = required(t, "input");
        DataType type = input.dataType();
        if (type != DataType.FLOAT && type != DataType.DOUBLE) {
            throw new IllegalArgumentException("input: expected F32 or F64, got " + type);
        }
        ProducerConfig producer = producer(t, meta, input);
        INDArray gamma = t.get("bn.weight");
        INDArray beta = t.get("bn.bias");
        if ((gamma == null) != (beta == null)) {
            throw new IllegalArgumentException("bn.weight, bn.bias: expected both or neither, got only "
                    + (gamma == null ? "bn.bias" : "bn.weight"));
        }
        double eps = number(meta, "eps", "1e-5");
        double momentum = number(meta, "momentum", "0.1");
        for (Map.Entry<String, INDArray> e : t.entrySet()) {
            if (e.getValue().dataType() != type) {
                throw new IllegalArgumentException(e.getKey() + ": expected " + type + " like input, got "
                        + e.getValue().dataType());
            }
        }
        INDArray runningMean = required(t, "bn.running_mean");
        ConvBNConfig config = new ConvBNConfig(
                producer, new BatchNormConfig((int) runningMean.length(), eps, momentum, gamma != null), true);
        ConvBNParameters p = ConvBNParameters.of(
                required(t, producer.weightName()).dup(),
                dup(t.get(producer.biasName())),
                dup(gamma),
                dup(beta),
                runningMean.dup(),
                required(t, "bn.running_var").dup());
        ConvBNBlock block = ConvBNBlock.of(config, p, mode);
        INDArray output = block.forward(input);
        BlockGradients grads = block.backward(required(t, "grad_output"));
        Map<String, INDArray> r = new LinkedHashMap<>();
        r.put("output", output);
        r.put("grad_input", grads.input());
        grads.parameters().forEach((name, g) -> r.put("grad." + name, g));
        if (mode == Mode.TRAIN) {
            r.put("bn.running_mean", p.runningMean());
            r.put("bn.running_var", p.runningVar());
        }
        if (mode == Mode.DEPLOY) {
            block.foldedParameters().trainable().forEach(r::put);
        }
        return r;
    }

    /** The layer the metadata key {@code layer} names, shaped from its weight and the metadata. */
    private static ProducerConfig producer(Map<String, INDArray> t, Map<String, String> meta, INDArray input) {
        String layer = meta.getOrDefault("layer", "conv2d").strip();
        switch (layer) {
            case "conv2d": {
                requireRank("input", input, "[N,C,H,W]", 4);
                INDArray w = requireRank("conv.weight", required(t, "conv.weight"), "[O,C/groups,kH,kW]", 4);
                Padding padding;
                if (meta.getOrDefault("padding", "").strip().equalsIgnoreCase("same")) {
                    padding = Padding.same();
                } else {
                    int[] pad = pair(meta, "padding", "0,0");
                    padding = Padding.of(pad[0], pad[1]);
                }
                int[] stride = pair(meta, "stride", "1,1");
                int[] dilation = pair(meta, "dilation", "1,1");
                return ConvConfig.builder((int) input.size(1), (int) w.size(0))
                        .kernel((int) w.size(2), (int) w.size(3))
                        .stride(stride[0], stride[1])
                        .padding(padding)
                        .dilation(dilation[0], dilation[1])
                        .groups(integer(meta, "groups", "1"))
                        .bias(t.containsKey("conv.bias"))
                        .build();
            }
            case "conv_transpose2d": {
                requireRank("input", input, "[N,C,H,W]", 4);
                INDArray w = requireRank("conv.weight", required(t, "conv.weight"), "[C,O/groups,kH,kW]", 4);
                int groups = integer(meta, "groups", "1");
                int[] stride = pair(meta, "stride", "1,1");
                int[] padding = pair(meta, "padding", "0,0");
                int[] outputPadding = pair(meta, "output_padding", "0,0");
                int[] dilation = pair(meta, "dilation", "1,1");
                return ConvTransposeConfig.builder((int) w.size(0), (int) w.size(1) * groups)
                        .kernel((int) w.size(2), (int) w.size(3))
                        .stride(stride[0], stride[1])
                        .padding(padding[0], padding[1])
                        .outputPadding(outputPadding[0], outputPadding[1])
                        .dilation(dilation[0], dilation[1])
                        .groups(groups)
                        .bias(t.containsKey("conv.bias"))
                        .build();
            }
            case "linear": {
                if (input.rank() != 2 && input.rank() != 3) {
                    throw new IllegalArgumentException("input: expected [N,I] or [N,I,L] for a linear layer, got shape "
                            + Arrays.toString(input.shape()));
                }
                INDArray w = requireRank("linear.weight", required(t, "linear.weight"), "[O,I]", 2);
                return new LinearConfig((int) w.size(1), (int) w.size(0), t.containsKey("linear.bias"));
            }
            default:
                throw new IllegalArgumentException(
                        "metadata layer: expected conv2d, conv_transpose2d or linear, got \"" + layer + "\"");
        }
    }

    private static INDArray requireRank(String name, INDArray a, String shape, int rank) {
        if (a.rank() != rank) {
            throw new IllegalArgumentException(
                    name + ": expected rank " + rank + " " + shape + ", got shape " + Arrays.toString(a.shape()));
        }
        return a;
    }

    private static INDArray required(Map<String, INDArray> t, String name) {
        INDArray a = t.get(name);
        if (a == null) {
            throw new IllegalArgumentException(name + ": expected in the case file, got only " + t.keySet());
        }
        return a;
    }

    private static INDArray dup(INDArray a) {
        return a == null ? null : a.dup();
    }

    private static int[] pair(Map<String, String> meta, String key, String fallback) {
        String v = meta.getOrDefault(key, fallback).strip();
        String[] parts = v.split(",");
        try {
            if (parts.length == 2) {
                return new int[] {Integer.parseInt(parts[0].strip()), Integer.parseInt(parts[1].strip())};
            }
            if (parts.length == 1) {
                int x = Integer.parseInt(parts[0].strip());
                return new int[] {x, x};
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException("metadata " + key + ": expected \"a,b\" with integers, got \"" + v + "\"");
    }

    private static int integer(Map<String, String> meta, String key, String fallback) {
        String v = meta.getOrDefault(key, fallback).strip();
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("metadata " + key + ": expected an integer, got \"" + v + "\"");
        }
    }

    private static double number(Map<String, String> meta, String key, String fallback) {
        String v = meta.getOrDefault(key, fallback).strip();
        try {
            return Double.parseDouble(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("metadata " + key + ": expected a number, got \"" + v + "\"");
        }
    }
}
