package org.convbn.bench;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.convbn.dl4j.parallel.AveragingParallelWrapper;
import org.deeplearning4j.datasets.iterator.utilty.ListDataSetIterator;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * Throughput of data-parallel fine-tuning on one machine: the DL4J zoo ResNet50 converted to ConvBN layers (a
 * {@link Dl4jVariant}, workspaces on) trained by one worker ({@code fit} on each minibatch) or by N workers
 * ({@link AveragingParallelWrapper}, averaging after every round of N minibatches), in one fit. Each round is timed
 * on its own (the first ones, the first of which builds the workers' replicas, as warm-up); prints the median images per second
 * with the spread.
 */
@Command(
        name = "parallel",
        mixinStandardHelpOptions = true,
        description = "Images per second of a converted DL4J zoo ResNet50 trained by 1 worker or N workers "
                + "(ParallelWrapper, parameter averaging every round).")
final class ParallelCommand implements Callable<Integer> {
    @Option(
            names = "--workers",
            description = "1: plain fit; >= 2: AveragingParallelWrapper (default: " + "${DEFAULT-VALUE})")
    int workers = 2;

    @Option(
            names = "--dl4j",
            description = "the converted variant: DL4J_CONVERTED_EVAL, DL4J_CONVERTED_TUNE or "
                    + "DL4J_CONVERTED_TUNE_KEEP (default: ${DEFAULT-VALUE})")
    Dl4jVariant variant = Dl4jVariant.DL4J_CONVERTED_TUNE;

    /** The batch of each worker's minibatch. */
    @Mixin
    InputShape shape = new InputShape(8, 224, 112, "DL4J's zoo ResNet50");

    @Option(names = "--rounds", description = "measured rounds (default: ${DEFAULT-VALUE})")
    int rounds = 5;

    @Option(names = "--warmup", description = "unmeasured rounds first (default: ${DEFAULT-VALUE})")
    int warmup = 1;

    @Override
    public Integer call() {
        if (workers < 1) {
            throw new IllegalArgumentException("--workers: expected >= 1, got " + workers);
        }
        if (variant.mode() == null) {
            throw new IllegalArgumentException("--dl4j: expected a converted variant, got " + variant
                    + " (DL4J's frozen BN fails with workspaces on)");
        }
        if (rounds < 1 || warmup < 0) {
            throw new IllegalArgumentException(
                    "--rounds, --warmup: expected >= 1 and >= 0, got " + rounds + ", " + warmup);
        }
        shape.validate();
        Nd4j.getMemoryManager().togglePeriodicGc(false);
        Dl4jStep step = new Dl4jStep(variant, shape.batch, shape.resolution, 42);
        ComputationGraph net = step.graph();
        DataSet minibatch = step.batch();
        int total = warmup + rounds;
        // Round r starts when a worker's first minibatch of round r is read (the wrapper reads one round at a time,
        // with prefetch off) and ends when the next starts, or when the fit returns.
        long[] starts = new long[total + 1];
        if (workers == 1) {
            for (int r = 0; r < total; r++) {
                starts[r] = System.nanoTime();
                net.fit(minibatch);
            }
        } else {
            List<DataSet> all = Collections.nCopies(total * workers, minibatch);
            ListDataSetIterator<DataSet> timed = new ListDataSetIterator<>(all, 1) {
                private int read;

                @Override
                public DataSet next() {
                    if (read % workers == 0) {
                        starts[read / workers] = System.nanoTime();
                    }
                    read++;
                    return super.next();
                }
            };
            try (AveragingParallelWrapper wrapper = AveragingParallelWrapper.builder(net)
                    .workers(workers)
                    .prefetch(0)
                    .build()) {
                wrapper.fit(timed);
            }
        }
        starts[total] = System.nanoTime();
        List<Double> rates = new ArrayList<>();
        for (int r = 0; r < total; r++) {
            double seconds = (starts[r + 1] - starts[r]) / 1e9;
            double rate = (double) workers * shape.batch / seconds;
            boolean measured = r >= warmup;
            String label = measured ? "" : workers > 1 && r == 0 ? " (warm-up: the replicas are built)" : " (warm-up)";
            System.err.printf(
                    Locale.ROOT,
                    "  [%d worker(s)] round %d/%d%s: %.0f ms, %.2f images/s%n",
                    workers,
                    r + 1,
                    total,
                    label,
                    seconds * 1e3,
                    rate);
            if (measured) {
                rates.add(rate);
            }
        }
        Collections.sort(rates);
        System.out.printf(
                Locale.ROOT,
                "%s, %d worker(s), batch %d per worker, %dx%d: %.2f images/s median "
                        + "(%.2f-%.2f over %d rounds), %d OpenMP threads per op%n",
                variant,
                workers,
                shape.batch,
                shape.resolution,
                shape.resolution,
                MeasureCommand.median(rates),
                rates.get(0),
                rates.get(rates.size() - 1),
                rates.size(),
                Nd4j.getEnvironment().maxMasterThreads());
        return 0;
    }
}
