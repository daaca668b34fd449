package org.convbn.bench;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import org.bytedeco.javacpp.Loader;
import org.convbn.core.Mode;
import org.convbn.core.Precision;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The mode comparison: every mode (and, with {@code --peer pytorch}, PyTorch's same step in the same modes) is
 * measured in rounds, interleaved: round 1 runs A B C D, round 2 runs A B C D again, and so on, each in a fresh
 * process, so that a machine that slows down for a minute slows every mode alike. Each round has two passes: time
 * with glibc's default allocator settings (as applications run), and memory with MALLOC_MMAP_THRESHOLD_ at 64 KiB so
 * that large frees go back to the OS and the RSS high-water mark follows live memory (that setting turns every large
 * allocation into fresh pages, which slows a framework that allocates per step, so it is kept out of the timing).
 * The table gives per mode the median over all measured steps and the spread of the round medians; ratios between
 * modes are taken within each round and summarised over the rounds. results.json and a chart come out.
 */
@Command(
        name = "report",
        description = "Compare the modes on a network step: time, peak memory, retained bytes.",
        mixinStandardHelpOptions = true)
final class ReportCommand implements Callable<Integer> {
    /** Measured steps of the memory pass: the peak of a step repeats to within a few MiB. */
    private static final int MEMORY_STEPS = 2;
    /** The modes measured when none are named. */
    static final List<Variant> DEFAULT_MODES = List.of(Variant.EVAL, Variant.DEPLOY, Variant.TUNE);

    @Mixin
    BenchOptions run;

    @Mixin
    IsaOption isa;

    @Option(
            names = "--modes",
            split = ",",
            description = "modes to measure (default: EVAL,DEPLOY,TUNE, the fine-tuning modes, or none when --dl4j "
                    + "is given); "
                    + "TUNE_KEEP is TUNE keeping W' for the backward instead of recomputing it; EVAL_REVERSIBLE and "
                    + "TUNE_REVERSIBLE run reversible stages")
    List<Variant> modes;

    @Option(
            names = "--precision",
            split = ",",
            description = "how feature maps are stored, each measured for every mode: FULL (float32), BF16_EMULATED "
                    + "(bfloat16 maps computed in float32 kernels: memory and accuracy of mixed precision, not its speed), "
                    + "BF16_MIXED (native bfloat16 kernels: refused where there are none); the PyTorch peer runs a bfloat16 "
                    + "row under torch.autocast(\"cpu\", dtype=torch.bfloat16) (default: FULL)")
    List<Precision> precisions = List.of(Precision.FULL);

    @Option(
            names = "--reversible",
            description = "also measure EVAL and TUNE with reversible stages " + "(EVAL_REVERSIBLE, TUNE_REVERSIBLE)")
    boolean reversible;

    @Option(
            names = "--rounds",
            description = "times each mode is measured, interleaved with the others, each in "
                    + "fresh processes (default: ${DEFAULT-VALUE})")
    int rounds = 2;

    @Option(
            names = "--peer",
            description = "also run the same step in another framework: none or pytorch (needs a "
                    + "python3 with torch and torchvision, e.g. Debian's python3-torch python3-torchvision; skipped with a "
                    + "message when none is found) (default: ${DEFAULT-VALUE})")
    Peer peer = Peer.NONE;

    @Option(
            names = "--dl4j",
            split = ",",
            description =
                    "also measure DL4J's zoo ResNet50 (needs --model resnet50): "
                            + "DL4J_FROZEN_BN (DL4J's own, BN in FrozenLayerWithBackprop), DL4J_CONVERTED_EVAL, DL4J_CONVERTED_TUNE, "
                            + "DL4J_CONVERTED_TUNE_KEEP (converted by convbn-dl4j); e.g. --dl4j DL4J_FROZEN_BN,DL4J_CONVERTED_TUNE")
    List<Dl4jVariant> dl4j = new ArrayList<>();

    @Option(
            names = "--dl4j-gc-every-ms",
            description = "memory pass of the DL4J variants: run the garbage collector "
                    + "this often during steps, because DL4J without workspaces leaves its dropped arrays to the GC and the "
                    + "peak would otherwise count everything a step allocated; 0: never (default: ${DEFAULT-VALUE})")
    long dl4jGcEveryMs = 100;

    @Option(
            names = "--malloc-mmap-threshold",
            description = "MALLOC_MMAP_THRESHOLD_ of the memory pass: "
                    + "64 KiB makes large frees return to the OS so that RSS follows live memory; 0 leaves glibc's default "
                    + "(default: ${DEFAULT-VALUE})")
    long mallocMmapThreshold = 65536;

    @Mixin
    MeasuringProcesses processes;

    @Mixin
    ResultFiles files = new ResultFiles("results.json", "chart.png");

    /**
     * One thing to measure: a mode of the library's network in a precision, a DL4J variant, or a mode of the peer (under
     * bfloat16 autocast for a bfloat16 precision).
     */
    private record Target(String name, Variant variant, Dl4jVariant dl4j, Mode peerMode, Precision precision) {}

    /**
     * @throws UnsupportedOperationException naming the kernels and instruction set found, before any process starts,
     *                                       for a precision no kernels here compute in
     */
    static void requireKernels(Precision precision) {
        if (precision.isBf16()) { // full precision always has kernels: ND4J's
            Kernels.create(DataType.FLOAT, precision, Arena.direct()).close();
        }
    }

    /** @return the suffix of a row's name in {@code precision}: none in full precision, "@bf16" else */
    static String suffix(Precision precision) {
        return precision.isBf16() ? "@bf16" : "";
    }

    @Override
    public Integer call() throws Exception {
        run.validate();
        files.checkWritable();
        isa.cap(); // a bad --isa is named before anything runs
        if (rounds < 1) {
            throw new IllegalArgumentException("--rounds: expected >= 1, got " + rounds);
        }
        if (modes == null) {
            modes = dl4j.isEmpty() ? DEFAULT_MODES : List.of();
        }
        if (modes.isEmpty() && dl4j.isEmpty() && !reversible) {
            throw new IllegalArgumentException("--modes: expected at least one mode, got none");
        }
        if (precisions.isEmpty() || precisions.stream().distinct().count() != precisions.size()) {
            throw new IllegalArgumentException("--precision: expected distinct values, got " + precisions);
        }
        if (precisions.contains(Precision.BF16_MIXED) && precisions.contains(Precision.BF16_EMULATED)) {
            throw new IllegalArgumentException(
                    "--precision: expected one bfloat16 precision (their rows share a name), got " + precisions);
        }
        precisions.forEach(ReportCommand::requireKernels);
        if (precisions.stream().anyMatch(Precision::isBf16)
                && (reversible || modes.stream().anyMatch(Variant::reversible))) {
            throw new IllegalArgumentException(
                    "--precision, --reversible: reversible stages run in full precision only, " + "got " + precisions);
        }
        if (precisions.stream().anyMatch(Precision::isBf16) && run.model.isProxy()) {
            throw new IllegalArgumentException("--precision: " + run.model.cliName() + " (GroupNorm, proxy-normalised) "
                    + "has no bfloat16 feature maps, expected FULL, got " + precisions);
        }
        if (!dl4j.isEmpty() && run.model != Model.RESNET50) {
            throw new IllegalArgumentException("--dl4j: the DL4J comparison runs the zoo's ResNet50, expected --model "
                    + "resnet50, got " + run.model.cliName());
        }
        List<Target> targets = targets();
        if (!run.model.isResNet()) {
            targets.stream()
                    .filter(t -> t.variant() != null && t.variant().reversible())
                    .findFirst()
                    .ifPresent(t -> {
                        throw new IllegalArgumentException(
                                "--modes, --reversible: " + t.name() + " runs reversible stages, "
                                        + "which only the ResNets have, got --model " + run.model.cliName());
                    });
        }
        Optional<PyTorchPeer> torch = Optional.empty();
        if (peer == Peer.PYTORCH && run.model.torchvisionName().isEmpty()) {
            System.out.println("note: --peer pytorch skipped: torchvision has no " + run.model.cliName());
        } else if (peer == Peer.PYTORCH) {
            torch = PyTorchPeer.find(processes.python);
            if (torch.isEmpty()) {
                System.out.println("note: --peer pytorch skipped: none of " + processes.python + " imports torch and "
                        + "torchvision (on Debian: apt-get install -y python3-torch python3-torchvision)");
            } else {
                for (Precision p : precisions) {
                    for (Variant v : modes) {
                        String name = PyTorchPeer.name(v.mode()) + suffix(p);
                        if (!v.reversible()
                                && targets.stream().noneMatch(t -> t.name().equals(name))) {
                            targets.add(new Target(name, null, null, v.mode(), p));
                        }
                    }
                }
            }
        }
        System.out.printf(
                Locale.ROOT,
                "convbn report: %s, batch %d, %dx%d, %s, %d warm-up + %d measured steps; "
                        + "%d round(s) of %s, each in fresh processes%s%n",
                run.model.cliName(),
                run.shape.batch,
                run.shape.resolution,
                run.shape.resolution,
                precisionDescription(),
                run.warmup,
                run.steps,
                rounds,
                targets.stream().map(Target::name).toList(),
                torch.map(t -> "; PyTorch with " + t.python()).orElse(""));
        System.out.println("on " + machineDescription());
        if (!MemoryProbe.available()) {
            System.out.println("note: /proc/self is not available here; peak memory is reported as -1");
        }
        Map<String, List<ModeResult>> time = new LinkedHashMap<>();
        Map<String, List<ModeResult>> memory = new LinkedHashMap<>();
        int threads = Runtime.getRuntime().availableProcessors();
        for (int round = 1; round <= rounds; round++) {
            for (String pass : List.of("time", "memory")) {
                for (int i = 0; i < targets.size(); i++) {
                    Target t = targets.get(i);
                    System.out.printf(
                            Locale.ROOT,
                            "round %d/%d, %s pass: %s (%d/%d)%n",
                            round,
                            rounds,
                            pass,
                            t.name(),
                            i + 1,
                            targets.size());
                    boolean isTime = pass.equals("time");
                    int warmup = isTime ? run.warmup : 1;
                    int steps = isTime ? run.steps : MEMORY_STEPS;
                    long mmap = isTime ? 0 : mallocMmapThreshold;
                    ModeResult r = t.peerMode() != null
                            ? torch.orElseThrow()
                                    .measure(
                                            t.peerMode(),
                                            run.model,
                                            run.shape.batch,
                                            run.shape.resolution,
                                            warmup,
                                            steps,
                                            threads,
                                            mmap,
                                            isa,
                                            t.precision().isBf16())
                            : measureInFreshJvm(t, pass, warmup, steps, mmap);
                    if (t.peerMode() == null && r.threads() > 0) {
                        threads = r.threads(); // the peer runs with the threads ND4J ran with
                    }
                    (isTime ? time : memory)
                            .computeIfAbsent(t.name(), k -> new ArrayList<>())
                            .add(r);
                }
            }
        }
        List<ModeResult> results = new ArrayList<>();
        for (Target t : targets) {
            results.add(combine(t.name(), time.get(t.name()), memory.get(t.name())));
        }
        ModeResult first = results.get(0);
        Report report = new Report(
                run.model.cliName(),
                run.shape.batch,
                run.shape.resolution,
                first.threads(),
                first.backend(),
                precisions.equals(List.of(Precision.FULL))
                        ? "FLOAT"
                        : "FLOAT, feature maps "
                                + precisions.stream().map(Precision::name).collect(Collectors.joining(",")),
                run.warmup,
                machineDescription(),
                results,
                rounds,
                ratios(results));
        Map<String, Set<String>> ran = new TreeMap<>();
        results.stream().filter(r -> r.implementations() != null).forEach(r -> r.implementations()
                .forEach((kind, impls) ->
                        ran.computeIfAbsent(kind, k -> new TreeSet<>()).addAll(impls)));
        if (!ran.isEmpty()) {
            System.out.print(implementationLines(ran));
        }
        System.out.println();
        System.out.print(ReportTable.render(report));
        Json.writeAtomically(files.out, report);
        Chart.write(files.chart, report);
        System.out.println("wrote " + files.out + " and " + files.chart);
        return 0;
    }

    private List<Target> targets() {
        List<Target> targets = new ArrayList<>();
        for (Precision p : precisions) {
            modes.forEach(v -> targets.add(new Target(v.name() + suffix(p), v, null, null, p)));
            if (reversible) {
                for (Variant v : List.of(Variant.EVAL_REVERSIBLE, Variant.TUNE_REVERSIBLE)) {
                    if (!modes.contains(v)) {
                        targets.add(new Target(v.name() + suffix(p), v, null, null, p));
                    }
                }
            }
        }
        dl4j.forEach(d -> targets.add(new Target(d.name(), null, d, null, Precision.FULL)));
        return targets;
    }

    /** @return e.g. "float32" or "float32 and bfloat16 feature maps (BF16_EMULATED)" */
    private String precisionDescription() {
        return precisions.stream()
                .map(p -> switch (p) {
                    case FULL -> "float32";
                    case BF16_MIXED -> "bfloat16 mixed precision";
                    case BF16_EMULATED ->
                        "bfloat16 feature maps computed in float32 (BF16_EMULATED; "
                                + "the peer under bfloat16 autocast)";
                })
                .collect(Collectors.joining(" and "));
    }

    /** One mode's rounds combined: time from the time passes (all steps pooled), memory from the memory passes. */
    static ModeResult combine(String name, List<ModeResult> time, List<ModeResult> memory) {
        List<Double> steps = new ArrayList<>();
        time.forEach(r -> steps.addAll(r.stepsMs()));
        List<Double> sorted = new ArrayList<>(steps);
        Collections.sort(sorted);
        List<Long> peaks = new ArrayList<>();
        memory.forEach(r -> peaks.addAll(r.peaksBytes()));
        List<Long> roundPeaks = memory.stream().map(ModeResult::peakBytes).toList();
        List<Long> sortedPeaks = new ArrayList<>(roundPeaks);
        Collections.sort(sortedPeaks);
        ModeResult m = memory.get(0);
        ModeResult t = time.get(time.size() - 1);
        return new ModeResult(
                name,
                MeasureCommand.median(sorted),
                sorted.get(0),
                sorted.get(sorted.size() - 1),
                sortedPeaks.get((sortedPeaks.size() - 1) / 2),
                m.retainedBytes(),
                m.retainedActivationBytes(),
                m.baselineRssBytes(),
                steps,
                peaks,
                t.finalLoss(),
                t.backend(),
                t.threads(),
                time.stream().map(ModeResult::stepMsMedian).toList(),
                roundPeaks,
                t.implementations());
    }

    /**
     * The ratios worth reading, from paired rounds: TUNE against EVAL and DEPLOY, convbn against its peers, each within
     * one precision; and each mode in bfloat16 against itself in float32.
     */
    static List<Report.Ratio> ratios(List<ModeResult> results) {
        List<String[]> pairs = new ArrayList<>();
        for (String s : List.of("", suffix(Precision.BF16_EMULATED))) {
            for (String tune : List.of("TUNE", "TUNE_KEEP", "TUNE_REVERSIBLE", "EVAL_REVERSIBLE")) {
                pairs.add(new String[] {tune + s, "EVAL" + s});
                pairs.add(new String[] {tune + s, "DEPLOY" + s});
            }
            pairs.add(new String[] {"TUNE_REVERSIBLE" + s, "TUNE" + s});
            for (Mode mode : Mode.values()) {
                pairs.add(new String[] {mode.name() + s, PyTorchPeer.name(mode) + s});
            }
        }
        for (String converted : List.of("DL4J_CONVERTED_EVAL", "DL4J_CONVERTED_TUNE", "DL4J_CONVERTED_TUNE_KEEP")) {
            pairs.add(new String[] {converted, "DL4J_FROZEN_BN"});
        }
        String bf16 = suffix(Precision.BF16_EMULATED);
        for (Variant v : Variant.values()) {
            pairs.add(new String[] {v.name() + bf16, v.name()});
        }
        for (Mode mode : Mode.values()) {
            pairs.add(new String[] {PyTorchPeer.name(mode) + bf16, PyTorchPeer.name(mode)});
        }
        List<Report.Ratio> ratios = new ArrayList<>();
        for (String[] p : pairs) {
            Optional<ModeResult> a =
                    results.stream().filter(r -> r.mode().equals(p[0])).findFirst();
            Optional<ModeResult> b =
                    results.stream().filter(r -> r.mode().equals(p[1])).findFirst();
            if (a.isPresent() && b.isPresent() && !(p[0].startsWith("EVAL_REVERSIBLE") && p[1].startsWith("DEPLOY"))) {
                ratios.add(ratio(p[0] + "/" + p[1], a.get(), b.get()));
            }
        }
        return ratios;
    }

    private static Report.Ratio ratio(String name, ModeResult a, ModeResult b) {
        List<Double> times = new ArrayList<>();
        List<Double> peaks = new ArrayList<>();
        for (int i = 0; i < a.roundMediansMs().size(); i++) {
            times.add(a.roundMediansMs().get(i) / b.roundMediansMs().get(i));
            peaks.add((double) a.roundPeaksBytes().get(i) / b.roundPeaksBytes().get(i));
        }
        Collections.sort(times);
        Collections.sort(peaks);
        double retained = a.retainedBytes() < 0 || b.retainedBytes() < 0
                ? Double.NaN
                : (double) a.retainedBytes() / b.retainedBytes();
        return new Report.Ratio(
                name,
                MeasureCommand.median(times),
                times.get(0),
                times.get(times.size() - 1),
                MeasureCommand.median(peaks),
                peaks.get(0),
                peaks.get(peaks.size() - 1),
                retained);
    }

    /**
     * Runs {@code measure} in a fresh JVM.
     *
     * @param pass "time" or "memory", for the progress lines
     * @param mmapThreshold MALLOC_MMAP_THRESHOLD_ for the JVM, or 0 for glibc's default
     */
    private ModeResult measureInFreshJvm(Target t, String pass, int warmupSteps, int measuredSteps, long mmapThreshold)
            throws IOException, InterruptedException {
        String mode = t.name();
        boolean isDl4j = t.dl4j() != null;
        Path result = Files.createTempFile("convbn-" + mode, ".json");
        try {
            List<String> cmd = measureCommand(
                    processes,
                    run,
                    isDl4j ? t.dl4j().name() : t.variant().name(),
                    isDl4j,
                    t.precision(),
                    pass,
                    warmupSteps,
                    measuredSteps,
                    result);
            if (isDl4j && mmapThreshold > 0) {
                cmd.addAll(List.of("--gc-every-ms", String.valueOf(dl4jGcEveryMs)));
            }
            ProcessBuilder pb = new ProcessBuilder(cmd)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .redirectError(ProcessBuilder.Redirect.INHERIT);
            setMmapThreshold(pb, mmapThreshold);
            isa.apply(pb.environment());
            int rc = pb.start().waitFor();
            if (rc != 0) {
                throw new IllegalStateException(
                        "measuring " + mode + " failed: the JVM exited with " + rc + " (its output is above)");
            }
            return Json.read(result, ModeResult.class);
        } finally {
            Files.deleteIfExists(result);
        }
    }

    /** @return the command line of a JVM that runs {@code measure} on this jar's class path */
    static List<String> measureCommand(
            MeasuringProcesses processes,
            BenchOptions run,
            String mode,
            boolean isDl4j,
            Precision precision,
            String pass,
            int warmupSteps,
            int measuredSteps,
            Path result) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xms" + processes.heap);
        cmd.add("-Xmx" + processes.heap);
        cmd.add("-XX:+AlwaysPreTouch");
        // ND4J's native buffers are not Java heap; do not let JavaCPP cap or GC-trigger on them.
        cmd.add("-Dorg.bytedeco.javacpp.maxphysicalbytes=0");
        cmd.add("-Dorg.bytedeco.javacpp.maxbytes=0");
        cmd.addAll(processes.jvmArgs);
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(BenchMain.class.getName());
        cmd.addAll(List.of(
                "measure",
                "--model",
                run.model.name(),
                isDl4j ? "--dl4j" : "--mode",
                mode,
                "--batch",
                String.valueOf(run.shape.batch),
                "--resolution",
                String.valueOf(run.shape.resolution),
                "--steps",
                String.valueOf(measuredSteps),
                "--warmup",
                String.valueOf(warmupSteps),
                "--pass",
                pass,
                "--result",
                result.toString()));
        if (precision != Precision.FULL) {
            cmd.addAll(List.of("--precision", precision.name()));
        }
        return cmd;
    }

    /** Sets MALLOC_MMAP_THRESHOLD_ for a child process, or removes it for glibc's default when 0. */
    static void setMmapThreshold(ProcessBuilder pb, long threshold) {
        if (threshold > 0) {
            pb.environment().put("MALLOC_MMAP_THRESHOLD_", String.valueOf(threshold));
        } else {
            pb.environment().remove("MALLOC_MMAP_THRESHOLD_");
        }
    }

    /** @return e.g. "CpuBackend linux-x86_64-onednn-avx2 blas=OPENBLAS": the backend and the native build loaded */
    static String backendDescription() {
        Map<String, Object> info = Nd4j.getExecutioner().getEnvironmentInformation().entrySet().stream()
                .collect(Collectors.toMap(e -> String.valueOf(e.getKey()), Map.Entry::getValue, (a, b) -> a));
        String build = Loader.getLoadedLibraries().entrySet().stream()
                .filter(e -> e.getKey().equals("nd4jcpu") || e.getKey().startsWith("nd4jcuda"))
                .map(e -> new File(e.getValue()).getParentFile().getName())
                .findFirst()
                .orElse("?");
        return Nd4j.getBackend().getClass().getSimpleName() + " " + build + " blas="
                + info.getOrDefault("blas.vendor", "?");
    }

    /** @return the CPU, its cores and vector extensions, and the oneDNN cap the measuring processes ran under */
    String machineDescription() {
        return Machine.current().describe() + "; oneDNN isa cap: " + isa.describe();
    }

    /**
     * @return one line per kind of primitive with the oneDNN implementations that ran, and a loud line for each
     *         reference implementation among them
     */
    static String implementationLines(Map<String, Set<String>> implementations) {
        StringBuilder sb = new StringBuilder("oneDNN implementations that ran in convbn's steps (all modes):\n");
        implementations.forEach(
                (kind, impls) -> sb.append(String.format(Locale.ROOT, "  %-36s %s%n", kind, String.join(", ", impls))));
        implementations.forEach(
                (kind, impls) -> impls.stream().filter(i -> i.startsWith("ref")).forEach(i -> sb.append("WARNING: ")
                        .append(kind)
                        .append(" ran oneDNN's reference implementation ")
                        .append(i)
                        .append(", orders of magnitude slower than its jit ones\n")));
        return sb.toString();
    }
}
