package org.convbn.transfer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import org.convbn.core.Mode;
import org.convbn.net.ResNet;
import org.convbn.train.InMemoryDataset;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.dataset.api.DataSetPreProcessor;
import org.nd4j.linalg.dataset.api.iterator.DataSetIterator;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * The one training loop and the one evaluation loop on a synthetic task a network learns in a few steps: training
 * from scratch (TRAIN) reaches high accuracy, the evaluation counts every image once and leaves the mode as it found
 * it, also when the data fails midway.
 */
class FineTuningLoopTest {
    private static final List<String> CLASSES = List.of("left", "right");

    /** Class 0: the left half brighter; class 1: the right half; plus noise. */
    static InMemoryDataset halves(int n, long seed) {
        INDArray x = Nd4j.randn(seed, new long[] {n, 3, 32, 32})
                .castTo(DataType.FLOAT)
                .muli(0.3);
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            y[i] = (i / 2) % 2;
            x.get(
                            NDArrayIndex.point(i),
                            NDArrayIndex.all(),
                            NDArrayIndex.all(),
                            y[i] == 0 ? NDArrayIndex.interval(0, 16) : NDArrayIndex.interval(16, 32))
                    .addi(1.0);
        }
        return new InMemoryDataset(x, y);
    }

    private static IdxBatches batches(InMemoryDataset d, boolean train) {
        return new IdxBatches(d, IntStream.range(0, d.size()).toArray(), CLASSES, 16, train, 5);
    }

    @Test
    void trainingFromScratchLearnsTheTaskAndEvaluationCountsEveryImage() {
        InMemoryDataset test = halves(40, 2);
        FineTuning.Config config = FineTuning.Config.builder()
                .mode(Mode.TRAIN)
                .learningRate(0.02)
                .weightDecay(0)
                .epochs(10)
                .build();
        ResNet net = ResNet.builder(ResNet.Variant.RESNET18)
                .classes(2)
                .dataType(DataType.FLOAT)
                .seed(3)
                .mode(Mode.TRAIN)
                .build();
        try (FineTuning job = FineTuning.start(net, config)) {
            List<Integer> batchesSeen = new ArrayList<>();
            // 10 epochs of 4 steps: enough for the running statistics (momentum 0.1) that evaluation uses to settle
            for (int e = 0; e < config.epochs(); e++) {
                job.runEpoch(batches(halves(64, 1), true), null, (i, images, loss) -> batchesSeen.add(i));
            }
            assertEquals(40, batchesSeen.size(), "64 images in batches of 16, 10 epochs");
            FineTuning.Evaluation result = job.evaluate(batches(test, false));
            assertEquals(40, result.images(), "the last partial batch is evaluated too");
            assertTrue(result.accuracy() >= 0.9, "accuracy " + result);
            assertTrue(result.loss() < Math.log(2), "loss below chance: " + result);
            assertEquals(Mode.TRAIN, job.network().mode(), "a TRAIN network is evaluated in EVAL and put back");
            assertEquals(Mode.TRAIN, job.network().blocks().get(0).block().mode());
        }
    }

    @Test
    void evaluationPutsTheModeBackWhenTheDataFails() {
        ResNet net = ResNet.builder(ResNet.Variant.RESNET18)
                .classes(2)
                .dataType(DataType.FLOAT)
                .seed(3)
                .mode(Mode.TRAIN)
                .build();
        try (FineTuning job = FineTuning.start(
                net, FineTuning.Config.builder().mode(Mode.TRAIN).build())) {
            IdxBatches source = batches(halves(32, 4), false);
            assertEquals(2, source.batchesPerEpoch());
            assertThrows(IllegalStateException.class, () -> job.evaluate(new FailingSecondBatch(source)));
            assertEquals(Mode.TRAIN, job.network().mode());
            assertEquals(Mode.TRAIN, job.network().blocks().get(5).block().mode());
        }
    }

    /** The last step of the epoch leaves a NaN in the classifier (a diverged update): validation sees it. */
    @Test
    void aNonFiniteValidationLossStopsTheRunWithoutRecordingTheEpoch() {
        ResNet net = ResNet.builder(ResNet.Variant.RESNET18)
                .classes(2)
                .dataType(DataType.FLOAT)
                .seed(3)
                .mode(Mode.TUNE)
                .build();
        try (FineTuning job = FineTuning.start(
                net, FineTuning.Config.builder().mode(Mode.TUNE).build())) {
            IdxBatches train = batches(halves(32, 1), true);
            IllegalStateException e = assertThrows(
                    IllegalStateException.class,
                    () -> job.runEpoch(train, batches(halves(16, 6), false), (i, n, l) -> {
                        if (i == train.batchesPerEpoch() - 1) {
                            job.network()
                                    .classifier()
                                    .parameters()
                                    .get("fc.bias")
                                    .putScalar(0, Double.NaN);
                        }
                    }));
            assertTrue(
                    e.getMessage()
                            .startsWith("epoch 1: the validation loss is NaN (the run diverged; lower the "
                                    + "learning rate); the epoch is not recorded"),
                    e.getMessage());
            assertEquals(0, job.epochsDone());
        }
    }

    /** A source whose second batch cannot be read. */
    private static final class FailingSecondBatch implements DataSetIterator {
        private static final long serialVersionUID = 1L;
        private final IdxBatches source;
        private int served;

        FailingSecondBatch(IdxBatches source) {
            this.source = source;
        }

        @Override
        public boolean hasNext() {
            return source.hasNext();
        }

        @Override
        public DataSet next() {
            if (served++ == 1) {
                throw new IllegalStateException("the second batch cannot be read");
            }
            return source.next();
        }

        @Override
        public DataSet next(int num) {
            return next();
        }

        @Override
        public void reset() {
            served = 0;
            source.reset();
        }

        @Override
        public int inputColumns() {
            return source.inputColumns();
        }

        @Override
        public int totalOutcomes() {
            return source.totalOutcomes();
        }

        @Override
        public boolean resetSupported() {
            return true;
        }

        @Override
        public boolean asyncSupported() {
            return false;
        }

        @Override
        public int batch() {
            return source.batch();
        }

        @Override
        public void setPreProcessor(DataSetPreProcessor preProcessor) {
            throw new UnsupportedOperationException();
        }

        @Override
        public DataSetPreProcessor getPreProcessor() {
            return null;
        }

        @Override
        public List<String> getLabels() {
            return source.getLabels();
        }
    }
}
