package org.convbn.bench.jmh;

import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Settings shared by every convbn benchmark: average time per step in milliseconds, two forks (a JVM's JIT
 * decisions and native memory placement differ from one process to the next, by more than a fork's iterations
 * differ from each other on this kind of step) with a fixed heap, 2 warm-up and 5 measured iterations of at least
 * 2 s. Run with {@code MALLOC_MMAP_THRESHOLD_=65536} in the environment so that large frees go back to the OS and
 * {@link PeakRssProfiler} sees live memory (docs/benchmarks.md).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(
        value = 2,
        jvmArgsAppend = {
            "-Xms2g",
            "-Xmx2g",
            "-XX:+AlwaysPreTouch",
            "-Dorg.bytedeco.javacpp.maxphysicalbytes=0",
            "-Dorg.bytedeco.javacpp.maxbytes=0"
        })
@State(Scope.Benchmark)
public abstract class AbstractBenchmark {}
