package org.convbn.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import org.convbn.core.Precision;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * Where a step's time goes: runs one mode (of convbn's network, or of the PyTorch peer) in a fresh process with
 * oneDNN's verbose log on, and sums the execution time oneDNN reports per kind of primitive over the measured steps:
 * conv forward, backward data, backward weights, BatchNorm, ReLU, sums and per-channel scaling, pooling, and reorders
 * of feature maps and of weights. What the step takes beyond oneDNN's primitives (ND4J's ops: the optimiser, the
 * fold's per-channel vectors, the head; Java; idle threads) is the rest.
 */
@Command(
        name = "profile",
        description = "Break a step's time down by oneDNN primitive, for convbn or the PyTorch " + "peer.",
        mixinStandardHelpOptions = true)
final class ProfileCommand implements Callable<Integer> {
    @Mixin
    BenchOptions run;

    @Mixin
    IsaOption isa;

    @Option(names = "--mode", description = "the variant to profile (default: ${DEFAULT-VALUE})")
    Variant mode = Variant.TUNE;

    @Option(
            names = "--peer",
            description =
                    "profile the peer's step in that mode instead: none or pytorch " + "(default: ${DEFAULT-VALUE})")
    Peer peer = Peer.NONE;

    @Option(
            names = "--precision",
            description = "how feature maps are stored: FULL, BF16_EMULATED or BF16_MIXED (see report); the peer "
                    + "runs under bfloat16 autocast for a bfloat16 precision (default: ${DEFAULT-VALUE})")
    Precision precision = Precision.FULL;

    @Mixin
    MeasuringProcesses processes;

    @Override
    public Integer call() throws Exception {
        run.validate();
        isa.cap(); // a bad --isa is named before anything runs
        if (peer != Peer.PYTORCH) {
            ReportCommand.requireKernels(precision);
        }
        Path result = Files.createTempFile("convbn-profile", ".json");
        Path log = Files.createTempFile("convbn-profile", ".log");
        try {
            List<String> cmd;
            String name;
            if (peer == Peer.PYTORCH) {
                PyTorchPeer torch = PyTorchPeer.find(processes.python)
                        .orElseThrow(() -> new IllegalStateException(
                                "--peer pytorch: none of " + processes.python + " imports torch and torchvision"));
                cmd = torch.command(
                        mode.mode(),
                        run.model,
                        run.shape.batch,
                        run.shape.resolution,
                        run.warmup,
                        run.steps,
                        Runtime.getRuntime().availableProcessors(),
                        result,
                        precision.isBf16());
                name = PyTorchPeer.name(mode.mode()) + ReportCommand.suffix(precision);
            } else {
                cmd = ReportCommand.measureCommand(
                        processes, run, mode.name(), false, precision, "profile", run.warmup, run.steps, result);
                name = mode.name() + ReportCommand.suffix(precision);
            }
            ProcessBuilder pb =
                    new ProcessBuilder(cmd).redirectOutput(log.toFile()).redirectError(ProcessBuilder.Redirect.INHERIT);
            pb.environment().put("ONEDNN_VERBOSE", "1");
            pb.environment().put("DNNL_VERBOSE", "1");
            pb.environment().remove("MALLOC_MMAP_THRESHOLD_");
            isa.apply(pb.environment());
            int rc = pb.start().waitFor();
            if (rc != 0) {
                throw new IllegalStateException("profiling " + name + " failed: the process exited with " + rc);
            }
            ModeResult r = Json.read(result, ModeResult.class);
            Map<String, double[]> byKind = aggregate(log, run.warmup + run.steps, run.steps, run.shape.batch);
            System.out.println("on " + Machine.current().describe() + "; oneDNN isa cap: " + isa.describe());
            System.out.print(render(name, r, byKind, run.steps));
            System.out.print(implementations(log));
            return 0;
        } finally {
            Files.deleteIfExists(result);
            Files.deleteIfExists(log);
        }
    }

    /**
     * Sums oneDNN's execution lines of the last {@code measured} of {@code total} identical steps by kind.
     *
     * @return per kind: {calls, milliseconds} per step
     */
    static Map<String, double[]> aggregate(Path log, int total, int measured, int batch) throws IOException {
        List<String[]> lines = new ArrayList<>();
        try (BufferedReader in =
                new BufferedReader(new InputStreamReader(Files.newInputStream(log), StandardCharsets.UTF_8))) {
            for (String line = in.readLine(); line != null; line = in.readLine()) {
                if (line.contains("_verbose,exec,")) {
                    lines.add(line.split(","));
                }
            }
        }
        int perStep = lines.size() / total;
        Map<String, double[]> byKind = new LinkedHashMap<>();
        for (String[] f : lines.subList(lines.size() - perStep * measured, lines.size())) {
            double[] sum = byKind.computeIfAbsent(kind(f, batch), k -> new double[2]);
            sum[0] += 1.0 / measured;
            sum[1] += Double.parseDouble(f[f.length - 1]) / measured;
        }
        return byKind;
    }

    /**
     * @return per kind of primitive in oneDNN's verbose log, the implementations that ran and how many calls each
     *         made (over all steps), e.g. "convolution jit:avx2 (2400)", and a loud line for each reference
     *         implementation among them; also the ISA oneDNN reported
     */
    static String implementations(Path log) throws IOException {
        Map<String, Map<String, Integer>> byPrimitive = new TreeMap<>();
        List<String> isas = new ArrayList<>();
        try (BufferedReader in =
                new BufferedReader(new InputStreamReader(Files.newInputStream(log), StandardCharsets.UTF_8))) {
            for (String line = in.readLine(); line != null; line = in.readLine()) {
                String[] f = line.split(",");
                if (line.contains("_verbose,exec,") && f.length > 5) {
                    String kind = f[5].equals("undef") ? f[3] : f[3] + " " + f[5];
                    byPrimitive.computeIfAbsent(kind, k -> new TreeMap<>()).merge(f[4], 1, Integer::sum);
                } else if (line.contains("_verbose,info,cpu,isa:") && !isas.contains(line)) {
                    isas.add(line.substring(line.indexOf("isa:") + 4));
                }
            }
        }
        StringBuilder sb = new StringBuilder("oneDNN implementations that ran (calls over all steps); isa reported: "
                + String.join(" / ", isas) + "\n");
        byPrimitive.forEach((kind, impls) -> sb.append(String.format(
                Locale.ROOT,
                "  %-44s %s%n",
                kind,
                impls.entrySet().stream()
                        .map(e -> e.getKey() + " (" + e.getValue() + ")")
                        .collect(Collectors.joining(", ")))));
        byPrimitive.forEach((kind, impls) -> impls.keySet().stream()
                .filter(i -> i.startsWith("ref"))
                .forEach(i -> sb.append("WARNING: ")
                        .append(kind)
                        .append(" ran oneDNN's reference implementation ")
                        .append(i)
                        .append(" (")
                        .append(impls.get(i))
                        .append(" calls), orders of magnitude slower than a jit one\n")));
        return sb.toString();
    }

    /** The kind of one exec line: {@code onednn_verbose,exec,cpu,PRIMITIVE,IMPL,PROP,...,PROBLEM,TIME}. */
    static String kind(String[] f, int batch) {
        String primitive = f[3];
        String prop = f[5];
        String problem = f[f.length - 2];
        return switch (primitive) {
            // convbn takes the weight gradient of a depthwise conv wider than 3 as a forward correlation over the
            // batch's N*C channels, one sample of them ("mb1"): weight gradient time, though a forward primitive
            case "convolution" ->
                prop.equals("forward_inference") && batch > 1 && problem.contains("mb1_")
                        ? "conv backward weights"
                        : "conv "
                                + prop.replace("forward_training", "forward")
                                        .replace("forward_inference", "forward")
                                        .replace("_", " ");
            case "reorder" ->
                problem.startsWith(batch + "x") && problem.split("x").length == 4
                        ? "reorder of feature maps"
                        : "reorder of weights";
            case "batch_normalization" -> "batch norm " + (prop.startsWith("backward") ? "backward" : "forward");
            case "eltwise" -> "activation (ReLU, SiLU) " + (prop.startsWith("backward") ? "backward" : "forward");
            case "binary" -> "sums and per-channel scaling";
            case "pooling", "pooling_v2" -> "pooling";
            default -> primitive;
        };
    }

    static String render(String name, ModeResult r, Map<String, double[]> byKind, int steps) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(
                Locale.ROOT, "%s: step %.0f ms (median of %d), %s%n", name, r.stepMsMedian(), steps, r.backend()));
        sb.append(String.format(
                Locale.ROOT, "%-34s %10s %12s %8s%n", "oneDNN primitive", "calls/step", "ms/step", "share"));
        double total = 0;
        for (Map.Entry<String, double[]> e : byKind.entrySet().stream()
                .sorted((a, b) -> Double.compare(b.getValue()[1], a.getValue()[1]))
                .toList()) {
            total += e.getValue()[1];
            sb.append(String.format(
                    Locale.ROOT,
                    "%-34s %10.0f %12.1f %7.1f%%%n",
                    e.getKey(),
                    e.getValue()[0],
                    e.getValue()[1],
                    100 * e.getValue()[1] / r.stepMsMedian()));
        }
        sb.append(String.format(
                Locale.ROOT,
                "%-34s %10s %12.1f %7.1f%%%n",
                "all oneDNN primitives",
                "",
                total,
                100 * total / r.stepMsMedian()));
        double rest = r.stepMsMedian() - total;
        sb.append(String.format(
                Locale.ROOT, "%-34s %10s %12.1f %7.1f%%%n", "outside oneDNN", "", rest, 100 * rest / r.stepMsMedian()));
        return sb.toString();
    }
}
