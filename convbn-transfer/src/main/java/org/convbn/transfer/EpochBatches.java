package org.convbn.transfer;

import java.util.Arrays;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Random;
import net.jcip.annotations.NotThreadSafe;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.dataset.api.DataSetPreProcessor;
import org.nd4j.linalg.dataset.api.iterator.DataSetIterator;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Mini-batches over {@code size} examples whose order is a function of the seed and the epoch ({@link EpochAware}):
 * a training source shuffles each epoch with {@link #epochSeed()} and drops the last partial batch, a validation
 * source keeps example order and the last partial batch. Subclasses load the examples of a batch; labels are one-hot
 * {@code [N, classes]}, and the pre-processor, if any, runs on every batch. Not thread-safe.
 */
@NotThreadSafe
public abstract class EpochBatches implements DataSetIterator, EpochAware {
    private static final long serialVersionUID = 1L;
    private final int size;
    private final List<String> classes;
    private final int batch;
    private final boolean train;
    private final long seed;
    private int[] order;
    private int cursor;
    private long epochSeed;
    /** Counts {@link #startEpoch} calls: what a subclass keys its per-epoch state on. */
    private long starts;

    private DataSetPreProcessor preProcessor;

    /**
     * Starts at epoch 0.
     *
     * @param size the number of examples
     * @param classes class names by label
     * @param batch examples per batch, at least 1 (and at most {@code size} when training)
     * @param train shuffle per epoch and drop the last partial batch
     * @param seed the seed of the order (and of whatever a subclass draws per epoch)
     * @throws IllegalArgumentException for a batch size out of range
     */
    protected EpochBatches(int size, List<String> classes, int batch, boolean train, long seed) {
        if (batch < 1 || (train && batch > size)) {
            throw new IllegalArgumentException("batch: expected 1.." + size + " (the images), got " + batch);
        }
        this.size = size;
        this.classes = List.copyOf(classes);
        this.batch = batch;
        this.train = train;
        this.seed = seed;
        startEpoch(0);
    }

    /**
     * Shuffles in place (Fisher-Yates).
     *
     * @param a modified
     * @param rng the draws
     */
    static void shuffle(int[] a, Random rng) {
        for (int i = a.length - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }

    /** @return {@code 0, 1, ..., n - 1} */
    static int[] identity(int n) {
        int[] a = new int[n];
        for (int i = 0; i < n; i++) {
            a[i] = i;
        }
        return a;
    }

    @Override
    public final void startEpoch(int epoch) {
        epochSeed = seed * 1_000_003L + epoch;
        order = identity(size);
        if (train) {
            shuffle(order, new Random(epochSeed));
        }
        cursor = 0;
        starts++;
    }

    /**
     * @return a number that changes with every {@link #startEpoch}: per-epoch state made for another value is stale
     *         (a rerun of the same epoch must draw its augmentation afresh, as the first run did)
     */
    protected final long epochStart() {
        return starts;
    }

    /** @return the seed of the current epoch: of its order and of its augmentation */
    protected final long epochSeed() {
        return epochSeed;
    }

    /** @return whether this is a training source (shuffled, augmented by subclasses, last partial batch dropped) */
    protected final boolean training() {
        return train;
    }

    /**
     * @param examples the example indices of the batch, 0..size-1, in batch order
     * @return features and one-hot labels of those examples, new arrays
     */
    protected abstract DataSet load(int[] examples);

    /**
     * @param labels a label per example
     * @param type the data type of the result
     * @return one-hot {@code [labels.length, classes]}
     */
    protected final INDArray oneHot(int[] labels, DataType type) {
        INDArray out = Nd4j.zeros(type, labels.length, classes.size());
        for (int i = 0; i < labels.length; i++) {
            out.putScalar(i, labels[i], 1.0);
        }
        return out;
    }

    /** @return the number of examples */
    public int size() {
        return size;
    }

    /** @return batches per epoch */
    public int batchesPerEpoch() {
        return train ? size / batch : (size + batch - 1) / batch;
    }

    @Override
    public boolean hasNext() {
        int left = size - cursor;
        return train ? left >= batch : left > 0;
    }

    @Override
    public DataSet next() {
        return next(batch);
    }

    @Override
    public DataSet next(int num) {
        if (!hasNext()) {
            throw new NoSuchElementException(
                    "no batch left in this epoch (" + size + " examples, batch " + batch + ")");
        }
        int n = Math.min(num, size - cursor);
        int[] examples = Arrays.copyOfRange(order, cursor, cursor + n);
        cursor += n;
        DataSet d = load(examples);
        if (preProcessor != null) {
            preProcessor.preProcess(d);
        }
        return d;
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

    /** Rewinds to the start of epoch 0's order (use {@link #startEpoch} for another epoch). */
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
