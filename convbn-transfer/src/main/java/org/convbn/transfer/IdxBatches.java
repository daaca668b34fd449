package org.convbn.transfer;

import java.util.List;
import java.util.Random;

import org.convbn.train.InMemoryDataset;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.dataset.api.DataSetPreProcessor;
import org.nd4j.linalg.dataset.api.iterator.DataSetIterator;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Mini-batches of an in-memory IDX dataset (Fashion-MNIST's files, {@link InMemoryDataset}: gray repeated over 3
 * channels, standardised) at its own resolution, shuffled per epoch by a seed ({@link EpochAware}); labels one-hot.
 * Training drops the last partial batch, validation keeps it.
 */
public final class IdxBatches implements DataSetIterator, EpochAware {
    private static final long serialVersionUID = 1L;
    private final InMemoryDataset data;
    private final int[] indices;
    private final List<String> classes;
    private final int batch;
    private final boolean train;
    private final long seed;
    private int[] order;
    private int cursor;
    private DataSetPreProcessor preProcessor;

    /**
     * @param data the examples, not modified
     * @param indices which examples of {@code data} this source serves
     * @param classes class names by label
     * @param batch images per batch
     * @param train shuffle per epoch and drop the last partial batch
     * @param seed the shuffle's seed
     */
    public IdxBatches(InMemoryDataset data, int[] indices, List<String> classes, int batch, boolean train, long seed) {
        if (batch < 1 || (train && batch > indices.length)) {
            throw new IllegalArgumentException("batch: expected 1.." + indices.length + " (the images), got " + batch);
        }
        this.data = data;
        this.indices = indices.clone();
        this.classes = List.copyOf(classes);
        this.batch = batch;
        this.train = train;
        this.seed = seed;
        startEpoch(0);
    }

    /**
     * Splits {@code n} example indices at random into training and validation indices.
     *
     * @return {train, validation}
     */
    public static int[][] split(int n, double validationFraction, long seed) {
        int[] all = new int[n];
        for (int i = 0; i < n; i++) {
            all[i] = i;
        }
        shuffle(all, new Random(seed));
        int v = (int) Math.round(validationFraction * n);
        return new int[][] {java.util.Arrays.copyOfRange(all, v, n), java.util.Arrays.copyOfRange(all, 0, v)};
    }

    private static void shuffle(int[] a, Random rng) {
        for (int i = a.length - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }

    @Override
    public void startEpoch(int epoch) {
        order = indices.clone();
        if (train) {
            shuffle(order, new Random(seed * 1_000_003L + epoch));
        }
        cursor = 0;
    }

    @Override
    public boolean hasNext() {
        int left = order.length - cursor;
        return train ? left >= batch : left > 0;
    }

    @Override
    public DataSet next() {
        return next(batch);
    }

    @Override
    public DataSet next(int num) {
        if (!hasNext()) {
            throw new java.util.NoSuchElementException("no batch left in this epoch");
        }
        int n = Math.min(num, order.length - cursor);
        InMemoryDataset.Batch b = data.batch(order, cursor, n);
        cursor += n;
        var labels = Nd4j.zeros(b.images().dataType(), n, classes.size());
        for (int i = 0; i < n; i++) {
            labels.putScalar(i, b.labels()[i], 1.0);
        }
        DataSet d = new DataSet(b.images(), labels);
        if (preProcessor != null) {
            preProcessor.preProcess(d);
        }
        return d;
    }

    @Override
    public int inputColumns() {
        return (int) (data.images().length() / data.size());
    }

    @Override
    public int totalOutcomes() {
        return classes.size();
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
    public void reset() {
        startEpoch(0);
    }

    @Override
    public int batch() {
        return batch;
    }

    @Override
    public void setPreProcessor(DataSetPreProcessor preProcessor) {
        this.preProcessor = preProcessor;
    }

    @Override
    public DataSetPreProcessor getPreProcessor() {
        return preProcessor;
    }

    @Override
    public List<String> getLabels() {
        return classes;
    }
}
