package org.convbn.testkit.conformance;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Supplier;
import net.jcip.annotations.Immutable;
import net.jcip.annotations.ThreadSafe;

/**
 * Runs independent jobs one after the other, then all at once on as many threads, and gives the largest
 * {@link RelativeError} between the two runs of any job. A job builds everything it uses (its network, its
 * optimizer, its data, from seeds) and returns named results; nothing is shared between jobs but the process
 * (ND4J's environment, the native libraries, their thread pools), which is what such a run tests.
 */
@ThreadSafe
public final class ConcurrentRuns {
    private ConcurrentRuns() {}

    /** The outcome: per job and result name, the relative error between the sequential and the concurrent run. */
    @Immutable
    public record Outcome(List<Map<String, Double>> errors) {
        public Outcome {
            errors = List.copyOf(errors);
        }

        /** @return the largest error over all jobs and results */
        public double worst() {
            return errors.stream()
                    .flatMap(m -> m.values().stream())
                    .mapToDouble(Double::doubleValue)
                    .max()
                    .orElse(0);
        }
    }

    /**
     * @param jobs each builds and trains its own state and returns its results by name; called twice each
     * @param floor the {@link RelativeError} floor
     * @return the errors between the sequential and the concurrent results
     * @throws IllegalArgumentException for fewer than two jobs
     * @throws IllegalStateException when a job fails in either run, or returns other names the second time
     */
    public static Outcome compare(List<Supplier<Map<String, double[]>>> jobs, double floor) {
        if (jobs.size() < 2) {
            throw new IllegalArgumentException("jobs: expected at least 2, got " + jobs.size());
        }
        List<Map<String, double[]>> sequential = new ArrayList<>();
        for (Supplier<Map<String, double[]>> job : jobs) {
            sequential.add(job.get());
        }
        List<Map<String, double[]>> concurrent = runTogether(jobs);
        List<Map<String, Double>> errors = new ArrayList<>();
        for (int j = 0; j < jobs.size(); j++) {
            Map<String, double[]> a = sequential.get(j);
            Map<String, double[]> b = concurrent.get(j);
            if (!a.keySet().equals(b.keySet())) {
                throw new IllegalStateException(
                        "job " + j + ": expected results " + a.keySet() + ", got " + b.keySet());
            }
            Map<String, Double> e = new TreeMap<>();
            a.forEach((name, values) -> e.put(name, RelativeError.of(values, b.get(name), floor)));
            errors.add(e);
        }
        return new Outcome(errors);
    }

    private static List<Map<String, double[]>> runTogether(List<Supplier<Map<String, double[]>>> jobs) {
        ExecutorService pool = Executors.newFixedThreadPool(jobs.size());
        CyclicBarrier start = new CyclicBarrier(jobs.size());
        try {
            List<Future<Map<String, double[]>>> futures = new ArrayList<>();
            for (Supplier<Map<String, double[]>> job : jobs) {
                futures.add(pool.submit(() -> {
                    start.await(); // all jobs start together, so that they overlap
                    return job.get();
                }));
            }
            List<Map<String, double[]>> out = new ArrayList<>();
            for (int j = 0; j < futures.size(); j++) {
                try {
                    out.add(futures.get(j).get());
                } catch (ExecutionException e) {
                    throw new IllegalStateException(
                            "job " + j + " failed when run with the others: " + e.getCause(), e.getCause());
                }
            }
            return out;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        } finally {
            pool.shutdownNow();
        }
    }
}
