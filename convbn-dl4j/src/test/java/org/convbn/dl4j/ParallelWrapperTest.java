package org.convbn.dl4j;

import static org.convbn.dl4j.Dl4jFixtures.assertClose;
import static org.convbn.dl4j.Dl4jFixtures.assertSameTrainingState;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.convbn.core.Mode;
import org.convbn.dl4j.parallel.AveragingParallelWrapper;
import org.deeplearning4j.datasets.iterator.utilty.ListDataSetIterator;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.learning.config.Nesterovs;

/**
 * Converted networks under DL4J's ParallelWrapper ({@link AveragingParallelWrapper}), two workers, workspaces on:
 * with averaging every round, two workers on two minibatches take the step one worker takes on both together, in
 * every mode with fixed BN statistics. DL4J validates every array's workspace in each worker's fit (its
 * {@code validateArrayWorkspaces}), so these fits also show that the ConvBN layers' arrays are where DL4J expects
 * them.
 */
class ParallelWrapperTest {
    /**
     * float64: the mean of two half-batch gradients against the full-batch mean, summed in another order, through
     * three Nesterov steps: a few ulps of values of order 1.
     */
    static final double FLOAT64_TOLERANCE = 1e-12;
    /**
     * float32 on the oneDNN kernels: the same sums in float32 (epsilon 1.2e-7), convolutions of 4 and of 8 images
     * each with their own blocking, through three steps.
     */
    static final double FLOAT32_TOLERANCE = 1e-4;

    private static final long SEED = 23;
    private static final int ROUNDS = 3;

    /** The converted residual graph, Nesterov momentum 0.05 / 0.9. */
    private static ComputationGraph converted(Mode mode, DataType type) {
        return Dl4jFixtures.converted(mode, type, new Nesterovs(0.05, 0.9), SEED);
    }

    /** Minibatches of {@code INPUT_SHAPE[0]} examples, two per round. */
    private static List<DataSet> minibatches(DataType type, int count) {
        List<DataSet> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            out.add(new DataSet(Dl4jFixtures.input(type, 100 + i), Dl4jFixtures.labels(type, 200 + i)));
        }
        return out;
    }

    @ParameterizedTest
    @EnumSource(
            value = Mode.class,
            names = {"EVAL", "DEPLOY", "TUNE"})
    void twoWorkersTakeTheCombinedBatchStep(Mode mode) {
        ComputationGraph single = converted(mode, DataType.DOUBLE);
        ComputationGraph parallel = converted(mode, DataType.DOUBLE);
        List<DataSet> batches = minibatches(DataType.DOUBLE, 2 * ROUNDS);
        INDArray start = parallel.params().dup();
        for (int r = 0; r < ROUNDS; r++) {
            single.fit(DataSet.merge(batches.subList(2 * r, 2 * r + 2)));
        }
        try (AveragingParallelWrapper wrapper =
                AveragingParallelWrapper.builder(parallel).build()) {
            wrapper.fit(new ListDataSetIterator<>(batches, 1));
        }
        assertTrue(parallel.params().sub(start).amaxNumber().doubleValue() > 1e-3, "the parameters moved");
        assertSameTrainingState(mode.toString(), single, parallel, FLOAT64_TOLERANCE);
        assertEquals(mode, ConvBNLayers.of(parallel).get(0).mode());
    }

    /**
     * In TRAIN each worker normalises with its own minibatch's statistics: one round gives the mean of the models
     * each worker makes alone (parameters, running statistics, updater state), which is data-parallel BatchNorm
     * over a worker's minibatch, not over both.
     */
    @Test
    void trainAveragesTheWorkersOwnSteps() {
        ComputationGraph alone0 = converted(Mode.TRAIN, DataType.DOUBLE);
        ComputationGraph alone1 = converted(Mode.TRAIN, DataType.DOUBLE);
        ComputationGraph combined = converted(Mode.TRAIN, DataType.DOUBLE);
        ComputationGraph parallel = converted(Mode.TRAIN, DataType.DOUBLE);
        List<DataSet> batches = minibatches(DataType.DOUBLE, 2);
        alone0.fit(batches.get(0));
        alone1.fit(batches.get(1));
        combined.fit(DataSet.merge(batches));
        try (AveragingParallelWrapper wrapper =
                AveragingParallelWrapper.builder(parallel).build()) {
            wrapper.fit(new ListDataSetIterator<>(batches, 1));
        }
        INDArray mean = alone0.params().add(alone1.params()).muli(0.5);
        assertClose("TRAIN parameters", mean, parallel.params(), FLOAT64_TOLERANCE);
        assertClose(
                "TRAIN updater state",
                alone0.getUpdater()
                        .getStateViewArray()
                        .add(alone1.getUpdater().getStateViewArray())
                        .muli(0.5),
                parallel.getUpdater().getStateViewArray(),
                FLOAT64_TOLERANCE);
        double fromCombined =
                combined.params().sub(parallel.params()).amaxNumber().doubleValue();
        assertTrue(
                fromCombined > 1e-6,
                "per-worker batch statistics differ from the combined batch's, got " + fromCombined);
    }

    /** What an application runs: float32 layers on the oneDNN kernels, one network per worker thread. */
    @Test
    void float32OnTheOnednnKernels() {
        ComputationGraph single = converted(Mode.TUNE, DataType.FLOAT);
        ComputationGraph parallel = converted(Mode.TUNE, DataType.FLOAT);
        List<DataSet> batches = minibatches(DataType.FLOAT, 2 * ROUNDS);
        for (int r = 0; r < ROUNDS; r++) {
            single.fit(DataSet.merge(batches.subList(2 * r, 2 * r + 2)));
        }
        try (AveragingParallelWrapper wrapper =
                AveragingParallelWrapper.builder(parallel).prefetch(0).build()) {
            wrapper.fit(new ListDataSetIterator<>(batches, 1));
        }
        assertSameTrainingState("float32 TUNE", single, parallel, FLOAT32_TOLERANCE);
    }

    @Test
    void settingsAreChecked() {
        ComputationGraph net = converted(Mode.TUNE, DataType.DOUBLE);
        assertMessage(
                "workers: expected at least 2, got 1",
                () -> AveragingParallelWrapper.builder(net).workers(1).build());
        assertMessage("averagingFrequency: expected at least 1, got 0", () -> AveragingParallelWrapper.builder(net)
                .averagingFrequency(0)
                .build());
        assertMessage(
                "prefetch: expected at least 0, got -1",
                () -> AveragingParallelWrapper.builder(net).prefetch(-1).build());
        assertMessage(
                "workspaceMode: expected ENABLED or NONE, got null",
                () -> AveragingParallelWrapper.builder(net).workspaceMode(null).build());
        assertMessage(
                "model: expected a ComputationGraph or a MultiLayerNetwork, got null",
                () -> AveragingParallelWrapper.builder(null).build());
        ComputationGraph uninitialised =
                new ComputationGraph(net.getConfiguration().clone());
        assertMessage(
                "model: expected an initialised ComputationGraph (call init())",
                () -> AveragingParallelWrapper.builder(uninitialised).build());
    }

    private static void assertMessage(String start, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().startsWith(start), e.getMessage());
    }
}
