package org.convbn.bench.jmh;

import java.util.Collection;
import java.util.List;
import org.convbn.bench.MemoryProbe;
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.infra.IterationParams;
import org.openjdk.jmh.profile.InternalProfiler;
import org.openjdk.jmh.results.AggregationPolicy;
import org.openjdk.jmh.results.IterationResult;
import org.openjdk.jmh.results.Result;
import org.openjdk.jmh.results.ScalarResult;

/**
 * Reports, per iteration, how far the process's resident set rose above what it was when the iteration started:
 * the peak off-heap plus heap bytes a benchmark needs, which ND4J's own counters miss (libnd4j allocates CPU
 * buffers natively). Modelled on JMH's MemPoolProfiler, with the kernel's high-water mark as the source: the mark
 * is reset ("5" to /proc/self/clear_refs) before each iteration and VmHWM is read after it.
 *
 * <p>Use: {@code -prof org.convbn.bench.jmh.PeakRssProfiler}. Linux only; elsewhere it reports nothing.
 */
public final class PeakRssProfiler implements InternalProfiler {
    private long baseline;

    @Override
    public String getDescription() {
        return "Peak resident set size above the iteration's start (VmHWM - VmRSS, Linux)";
    }

    @Override
    public void beforeIteration(BenchmarkParams benchmarkParams, IterationParams iterationParams) {
        if (MemoryProbe.available()) {
            System.gc();
            baseline = MemoryProbe.residentBytes();
            MemoryProbe.resetHighWater();
        }
    }

    @Override
    public Collection<? extends Result> afterIteration(
            BenchmarkParams benchmarkParams, IterationParams iterationParams, IterationResult result) {
        if (!MemoryProbe.available()) {
            return List.of();
        }
        long peak = MemoryProbe.highWaterBytes() - baseline;
        return List.of(
                new ScalarResult("·rss.peak", peak / 1048576.0, "MiB", AggregationPolicy.MAX),
                new ScalarResult("·rss.baseline", baseline / 1048576.0, "MiB", AggregationPolicy.AVG));
    }
}
