package org.convbn.net;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.convbn.core.Mode;
import org.convbn.nd4j.Optimizer;
import org.convbn.testkit.conformance.ConcurrentRuns;
import org.convbn.train.TrainingStep;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Nesterovs;

/**
 * Training jobs for {@link ConcurrentRuns}: each builds its own network from a seed,
 * takes a few SGD steps on its own seeded batch and returns the losses and every parameter and running statistic.
 */
public final class ConcurrentTraining {
    /** Gradients, parameters and statistics below this compare in absolute terms (see RelativeError). */
    public static final double FLOOR = 1e-3;
    /** Steps per job. */
    public static final int STEPS = 2;

    private static final int[] LABELS = {3, 1};

    private ConcurrentTraining() {}

    /** @return a job training {@code net.get()} (built inside the job, in the job's thread) */
    public static Supplier<Map<String, double[]>> job(Supplier<Network> net, int resolution, DataType type, long seed) {
        return () -> {
            Network n = net.get();
            INDArray x = Nd4j.rand(seed, new long[] {2, 3, resolution, resolution})
                    .castTo(type)
                    .subi(0.5);
            Optimizer sgd = new Optimizer(new Nesterovs(0.01, 0.9));
            Map<String, double[]> out = new LinkedHashMap<>();
            double[] losses = new double[STEPS];
            for (int s = 0; s < STEPS; s++) {
                losses[s] = TrainingStep.run(n, x, LABELS, sgd).loss();
            }
            out.put("losses", losses);
            n.parameters()
                    .forEach((k, v) -> out.put(k, v.dup().reshape(v.length()).toDoubleVector()));
            for (NamedBlock b : n.blocks()) {
                b.block().batchNormState().ifPresent(bn -> {
                    out.put(b.bnName() + " running mean", bn.runningMean().dup().toDoubleVector());
                    out.put(b.bnName() + " running var", bn.runningVar().dup().toDoubleVector());
                });
            }
            return out;
        };
    }

    /**
     * Runs the jobs one after the other, then together on as many threads, and asserts that every result agrees
     * within {@code tolerance}; prints the worst relative error.
     */
    @SafeVarargs
    public static void assertConcurrentMatchesSequential(double tolerance, Supplier<Map<String, double[]>>... jobs) {
        ConcurrentRuns.Outcome o = ConcurrentRuns.compare(List.of(jobs), FLOOR);
        System.out.println("jobs in threads vs one after the other, worst relative error: " + o.worst());
        assertTrue(o.worst() <= tolerance, "worst " + o.worst() + ": " + o.errors());
    }

    /** @return a ResNet-18 with 10 classes in {@code mode} */
    public static Supplier<Network> resnet18(DataType type, Mode mode, long seed) {
        return () -> ResNet.builder(ResNet.Variant.RESNET18)
                .classes(10)
                .dataType(type)
                .seed(seed)
                .mode(mode)
                .build();
    }

    /** @return an EfficientNet-B0 with 10 classes in {@code mode} */
    public static Supplier<Network> efficientNetB0(DataType type, Mode mode, long seed) {
        return () -> EfficientNet.builder()
                .classes(10)
                .dataType(type)
                .seed(seed)
                .mode(mode)
                .build();
    }
}
