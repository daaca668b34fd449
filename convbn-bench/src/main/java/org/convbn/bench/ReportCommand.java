package org.convbn.bench;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;

import org.bytedeco.javacpp.Loader;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The mode comparison: for each mode, two fresh JVMs run warm-up and measured network steps, one for time with
 * glibc's default allocator settings (as applications run), one for memory with MALLOC_MMAP_THRESHOLD_ at 64 KiB
 * so that large frees go back to the OS and the RSS high-water mark follows live memory (that setting turns every
 * large allocation into fresh pages, which slows all modes by ~25%, so it is kept out of the timing). The table,
 * the TUNE/EVAL and TUNE/DEPLOY ratios, results.json and a chart come out.
 */
@Command(name = "report", description = "Compare the modes on a network step: time, peak memory, retained bytes.",
        mixinStandardHelpOptions = true)
final class ReportCommand implements Callable<Integer> {
    /** Measured steps of the memory pass: the peak of a step repeats to within a few MiB. */
    private static final int MEMORY_STEPS = 2;

    @Mixin
    BenchOptions run;
    @Option(names = "--modes", split = ",",
            description = "modes to measure (default: TRAIN,EVAL,DEPLOY,TUNE,TUNE_KEEP, or none when --dl4j is "
                    + "given); TUNE_KEEP is TUNE recomputing W' in the backward instead of keeping it; "
                    + "EVAL_REVERSIBLE and TUNE_REVERSIBLE run reversible stages")
    List<Variant> modes;
    @Option(names = "--reversible", description = "also measure EVAL and TUNE with reversible stages "
            + "(EVAL_REVERSIBLE, TUNE_REVERSIBLE, TUNE_KEEP_REVERSIBLE)")
    boolean reversible;
    @Option(names = "--dl4j", split = ",", description = "also measure DL4J's zoo ResNet50 (needs --model resnet50): "
            + "DL4J_FROZEN_BN (DL4J's own, BN in FrozenLayerWithBackprop), DL4J_CONVERTED_EVAL, DL4J_CONVERTED_TUNE, "
            + "DL4J_CONVERTED_TUNE_KEEP (converted by convbn-dl4j); e.g. --dl4j DL4J_FROZEN_BN,DL4J_CONVERTED_TUNE")
    List<Dl4jVariant> dl4j = new ArrayList<>();
    @Option(names = "--dl4j-gc-every-ms", description = "memory pass of the DL4J variants: run the garbage collector "
            + "this often during steps, because DL4J without workspaces leaves its dropped arrays to the GC and the "
            + "peak would otherwise count everything a step allocated; 0: never (default: ${DEFAULT-VALUE})")
    long dl4jGcEveryMs = 100;
    @Option(names = "--heap", description = "Java heap of each measuring JVM, -Xms = -Xmx (default: ${DEFAULT-VALUE})")
    String heap = "1g";
    @Option(names = "--malloc-mmap-threshold", description = "MALLOC_MMAP_THRESHOLD_ of the memory pass: "
            + "64 KiB makes large frees return to the OS so that RSS follows live memory; 0 leaves glibc's default "
            + "(default: ${DEFAULT-VALUE})")
    long mallocMmapThreshold = 65536;
    @Option(names = "--jvm-arg", description = "extra argument for the measuring JVMs, repeatable, e.g. "
            + "--jvm-arg=-Dorg.bytedeco.javacpp.platform.extension=-avx2 to load another native build")
    List<String> jvmArgs = new ArrayList<>();
    @Option(names = "--out", description = "results JSON (default: ${DEFAULT-VALUE})")
    Path out = Path.of("results.json");
    @Option(names = "--chart", description = "PNG bar chart of time and memory per mode (default: ${DEFAULT-VALUE})")
    Path chart = Path.of("chart.png");

    @Override
    public Integer call() throws Exception {
        run.validate();
        if (modes == null) {
            modes = dl4j.isEmpty() ? List.of(Variant.TRAIN, Variant.EVAL, Variant.DEPLOY, Variant.TUNE,
                    Variant.TUNE_KEEP) : List.of();
        }
        if (modes.isEmpty() && dl4j.isEmpty() && !reversible) {
            throw new IllegalArgumentException("--modes: expected at least one mode, got none");
        }
        if (!dl4j.isEmpty() && run.model != Model.RESNET50) {
            throw new IllegalArgumentException("--dl4j: the DL4J comparison runs the zoo's ResNet50, expected --model "
                    + "resnet50, got " + run.model.cliName());
        }
        System.out.printf(Locale.ROOT, "convbn report: %s, batch %d, %dx%d, float32, %d warm-up + %d measured steps "
                + "per mode, one JVM per mode and pass%n", run.model.cliName(), run.batch, run.resolution, run.resolution,
                run.warmup, run.steps);
        if (!MemoryProbe.available()) {
            System.out.println("note: /proc/self is not available here; peak memory is reported as -1");
        }
        List<String> measured = new ArrayList<>();
        modes.forEach(m -> measured.add(m.name()));
        if (reversible) {
            for (Variant v : List.of(Variant.EVAL_REVERSIBLE, Variant.TUNE_REVERSIBLE,
                    Variant.TUNE_KEEP_REVERSIBLE)) {
                if (!measured.contains(v.name())) {
                    measured.add(v.name());
                }
            }
        }
        dl4j.forEach(v -> measured.add(v.name()));
        List<ModeResult> results = new ArrayList<>();
        for (String mode : measured) {
            System.out.printf(Locale.ROOT, "measuring %s (%d/%d): time...%n", mode, results.size() + 1,
                    measured.size());
            ModeResult time = measureInFreshJvm(mode, "time", run.warmup, run.steps, 0);
            System.out.printf(Locale.ROOT, "measuring %s (%d/%d): memory...%n", mode, results.size() + 1,
                    measured.size());
            ModeResult memory = measureInFreshJvm(mode, "memory", 1, MEMORY_STEPS, mallocMmapThreshold);
            results.add(new ModeResult(mode, time.stepMsMedian(), time.stepMsMin(), time.stepMsMax(),
                    memory.peakBytes(), memory.retainedBytes(), memory.retainedActivationBytes(),
                    memory.baselineRssBytes(), time.stepsMs(), memory.peaksBytes(), time.finalLoss(), time.backend(),
                    time.threads()));
        }
        Report report = new Report(run.model.cliName(), run.batch, run.resolution, results.get(0).threads(),
                results.get(0).backend(), "FLOAT", run.warmup, machineDescription(), results);
        System.out.println();
        System.out.print(ReportTable.render(report));
        Json.writeAtomically(out, report);
        Chart.write(chart, report);
        System.out.println("wrote " + out + " and " + chart);
        return 0;
    }

    /**
     * Runs {@code measure} in a fresh JVM.
     *
     * @param pass "time" or "memory", for the progress lines
     * @param mmapThreshold MALLOC_MMAP_THRESHOLD_ for the JVM, or 0 for glibc's default
     */
    private ModeResult measureInFreshJvm(String mode, String pass, int warmupSteps, int measuredSteps,
                                         long mmapThreshold) throws IOException, InterruptedException {
        boolean isDl4j = mode.startsWith("DL4J_");
        Path result = Files.createTempFile("convbn-" + mode, ".json");
        try {
            List<String> cmd = new ArrayList<>();
            cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
            cmd.add("-Xms" + heap);
            cmd.add("-Xmx" + heap);
            cmd.add("-XX:+AlwaysPreTouch");
            // ND4J's native buffers are not Java heap; do not let JavaCPP cap or GC-trigger on them.
            cmd.add("-Dorg.bytedeco.javacpp.maxphysicalbytes=0");
            cmd.add("-Dorg.bytedeco.javacpp.maxbytes=0");
            cmd.addAll(jvmArgs);
            cmd.add("-cp");
            cmd.add(System.getProperty("java.class.path"));
            cmd.add(BenchMain.class.getName());
            cmd.addAll(List.of("measure", "--model", run.model.name(), isDl4j ? "--dl4j" : "--mode", mode, "--batch",
                    String.valueOf(run.batch), "--resolution", String.valueOf(run.resolution), "--steps",
                    String.valueOf(measuredSteps), "--warmup", String.valueOf(warmupSteps), "--pass", pass, "--result",
                    result.toString()));
            if (isDl4j && mmapThreshold > 0) {
                cmd.addAll(List.of("--gc-every-ms", String.valueOf(dl4jGcEveryMs)));
            }
            ProcessBuilder pb = new ProcessBuilder(cmd).inheritIO().redirectOutput(ProcessBuilder.Redirect.DISCARD);
            pb.redirectError(ProcessBuilder.Redirect.INHERIT);
            if (mmapThreshold > 0) {
                pb.environment().put("MALLOC_MMAP_THRESHOLD_", String.valueOf(mmapThreshold));
            } else {
                pb.environment().remove("MALLOC_MMAP_THRESHOLD_");
            }
            int rc = pb.start().waitFor();
            if (rc != 0) {
                throw new IllegalStateException("measuring " + mode + " failed: the JVM exited with " + rc
                        + " (its output is above)");
            }
            return Json.read(result, ModeResult.class);
        } finally {
            Files.deleteIfExists(result);
        }
    }

    /** @return e.g. "CpuBackend linux-x86_64-onednn-avx2 blas=OPENBLAS": the backend and the native build loaded */
    static String backendDescription() {
        Map<String, Object> info = Nd4j.getExecutioner().getEnvironmentInformation().entrySet().stream()
                .collect(Collectors.toMap(e -> String.valueOf(e.getKey()), Map.Entry::getValue, (a, b) -> a));
        String build = Loader.getLoadedLibraries().entrySet().stream()
                .filter(e -> e.getKey().equals("nd4jcpu") || e.getKey().startsWith("nd4jcuda"))
                .map(e -> new File(e.getValue()).getParentFile().getName()).findFirst().orElse("?");
        return Nd4j.getBackend().getClass().getSimpleName() + " " + build + " blas="
                + info.getOrDefault("blas.vendor", "?");
    }

    static String machineDescription() {
        return System.getProperty("os.name") + " " + System.getProperty("os.arch") + ", "
                + Runtime.getRuntime().availableProcessors() + " processors";
    }
}
