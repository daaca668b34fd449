package org.convbn.bench.jmh;

import org.convbn.bench.Model;
import org.convbn.bench.NetworkStep;
import org.convbn.core.Mode;
import org.convbn.core.Precision;
import org.convbn.core.TuneFold;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Setup;

/** A whole network's fine-tuning step (forward, loss, backward of every block, SGD) per mode. */
public class NetworkStepBenchmark extends AbstractBenchmark {
    @Param({"TRAIN", "EVAL", "DEPLOY", "TUNE"})
    public Mode mode;

    @Param("RESNET18")
    public Model model;

    @Param("8")
    public int batch;

    @Param("112")
    public int resolution;

    /** How feature maps are stored; {@code -p precision=FULL,BF16_EMULATED} for both. */
    @Param("FULL")
    public Precision precision;

    private NetworkStep step;

    @Setup
    public void setUp() {
        Nd4j.getMemoryManager().togglePeriodicGc(false);
        step = new NetworkStep(
                model, mode, TuneFold.RECOMPUTE, false, batch, resolution, DataType.FLOAT, precision, 42);
    }

    @Benchmark
    public double step() {
        return step.run();
    }
}
