package org.convbn.bench;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.convbn.core.Precision;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * Measures one mode (or one DL4J variant) in this JVM and writes a {@link ModeResult} as JSON. The report runs it once per mode in a
 * fresh JVM, so that one mode's allocations do not raise another's baseline.
 */
@Command(
        name = "measure",
        description = "Measure one mode in this JVM (run by 'report', one JVM per mode).",
        mixinStandardHelpOptions = true)
final class MeasureCommand implements Callable<Integer> {
    @Mixin
    BenchOptions run;

    @Option(
            names = "--mode",
            description = "TRAIN, EVAL, DEPLOY, TUNE, TUNE_KEEP, EVAL_REVERSIBLE, TUNE_REVERSIBLE or "
                    + "TUNE_KEEP_REVERSIBLE")
    Variant mode;

    @Option(
            names = "--dl4j",
            description = "instead of --mode: a DL4J zoo ResNet50 variant, DL4J_FROZEN_BN, "
                    + "DL4J_CONVERTED_EVAL, DL4J_CONVERTED_TUNE or DL4J_CONVERTED_TUNE_KEEP")
    Dl4jVariant dl4j;

    @Option(
            names = "--precision",
            description =
                    "how feature maps are stored: FULL (float32), BF16_EMULATED (bfloat16, computed in float32) or "
                            + "BF16_MIXED (native bfloat16 kernels: refused where there are none) (default: ${DEFAULT-VALUE})")
    Precision precision = Precision.FULL;

    @Option(names = "--result", required = true, description = "where to write the JSON result")
    Path result;

    @Option(names = "--pass", description = "label of the progress lines (default: ${DEFAULT-VALUE})")
    String pass = "time+memory";

    @Option(
            names = "--gc-every-ms",
            description = "run the garbage collector this often during steps, so that "
                    + "arrays a framework drops without freeing (DL4J without workspaces) free their native memory while the "
                    + "step runs, as they would under memory pressure; 0: never (default: ${DEFAULT-VALUE})")
    long gcEveryMs;

    @Override
    public Integer call() throws Exception {
        run.validate();
        if (dl4j != null && precision != Precision.FULL) {
            throw new IllegalArgumentException(
                    "--precision: DL4J's variants run in float32, expected FULL, got " + precision);
        }
        if ((mode == null) == (dl4j == null)) {
            throw new IllegalArgumentException(
                    "--mode, --dl4j: expected exactly one, got " + (mode == null ? "neither" : "both"));
        }
        Nd4j.getMemoryManager().togglePeriodicGc(false);
        if (gcEveryMs > 0) {
            ScheduledExecutorService gc = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "gc-pacer");
                t.setDaemon(true);
                return t;
            });
            gc.scheduleAtFixedRate(System::gc, gcEveryMs, gcEveryMs, TimeUnit.MILLISECONDS);
        }
        boolean rss = MemoryProbe.available();
        String name = mode != null ? mode.name() : dl4j.name();
        BenchStep step = mode != null
                ? new NetworkStep(
                        run.model,
                        mode.mode(),
                        mode.tuneFold(),
                        mode.reversible(),
                        run.shape.batch,
                        run.shape.resolution,
                        DataType.FLOAT,
                        precision,
                        42)
                : new Dl4jStep(dl4j, run.shape.batch, run.shape.resolution, 42);
        List<Double> times = new ArrayList<>();
        List<Long> peaks = new ArrayList<>();
        long baseline = -1;
        double loss = Double.NaN;
        for (int i = 0; i < run.warmup + run.steps; i++) {
            settle();
            baseline = rss ? MemoryProbe.residentBytes() : -1;
            // What the network's arena holds from earlier steps is resident already and serves this step: counted.
            long held = step.heldBetweenStepsBytes();
            if (rss) {
                MemoryProbe.resetHighWater();
            }
            long t0 = System.nanoTime();
            loss = step.run();
            double ms = (System.nanoTime() - t0) / 1e6;
            long peak = rss ? MemoryProbe.highWaterBytes() - baseline + held : -1;
            boolean measured = i >= run.warmup;
            System.err.printf(
                    Locale.ROOT,
                    "  [%s %s] step %d/%d%s: %.0f ms, peak +%.1f MiB, loss %.4f%n",
                    name,
                    pass,
                    i + 1,
                    run.warmup + run.steps,
                    measured ? "" : " (warm-up)",
                    ms,
                    peak / 1048576.0,
                    loss);
            if (measured) {
                times.add(ms);
                peaks.add(peak);
            }
        }
        List<Double> sorted = new ArrayList<>(times);
        Collections.sort(sorted);
        ModeResult r = new ModeResult(
                name,
                median(sorted),
                sorted.get(0),
                sorted.get(sorted.size() - 1),
                Collections.max(peaks),
                step.retainedBytes(),
                step.retainedActivationBytes(),
                baseline,
                times,
                peaks,
                loss,
                ReportCommand.backendDescription() + " kernels=" + step.kernels(),
                Nd4j.getEnvironment().maxMasterThreads(),
                step.implementations());
        Json.writeAtomically(result, r);
        return 0;
    }

    /** Collects garbage twice so that arrays dropped by the last step free their native memory before measuring. */
    private static void settle() throws InterruptedException {
        System.gc();
        Thread.sleep(50);
        System.gc();
        Thread.sleep(50);
    }

    static double median(List<Double> sorted) {
        int n = sorted.size();
        return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
    }
}
