package org.convbn.bench.jmh;

import org.convbn.bench.Dl4jStep;
import org.convbn.bench.Dl4jVariant;
import org.nd4j.linalg.factory.Nd4j;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One {@code fit} of DL4J's zoo ResNet50 fine-tuned with frozen BN: DL4J's own network against the same network
 * converted to ConvBN layers (see {@link Dl4jStep}). A step takes seconds, so iterations are single steps.
 */
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 5, time = 1)
public class Dl4jResNet50StepBenchmark extends AbstractBenchmark {
    @Param({"DL4J_FROZEN_BN", "DL4J_CONVERTED_TUNE"})
    public Dl4jVariant variant;

    @Param("8")
    public int batch;

    @Param("224")
    public int resolution;

    private Dl4jStep step;

    @Setup
    public void setUp() {
        Nd4j.getMemoryManager().togglePeriodicGc(false);
        step = new Dl4jStep(variant, batch, resolution, 42);
    }

    @Benchmark
    public double step() {
        return step.run();
    }
}
