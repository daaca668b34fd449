package org.convbn.transfer;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.train.InMemoryDataset;
import org.nd4j.linalg.dataset.DataSet;

/**
 * Mini-batches of an in-memory IDX dataset (Fashion-MNIST's files, {@link InMemoryDataset}: gray repeated over 3
 * channels, standardised) at its own resolution, shuffled per epoch by a seed ({@link EpochAware}); labels one-hot.
 * Training drops the last partial batch, validation keeps it.
 */
@NotThreadSafe
public final class IdxBatches extends EpochBatches {
    private static final long serialVersionUID = 1L;
    private final InMemoryDataset data;
    private final int[] indices;

    /**
     * @param data the examples, not modified
     * @param indices which examples of {@code data} this source serves, not modified
     * @param classes class names by label
     * @param batch images per batch
     * @param train shuffle per epoch and drop the last partial batch
     * @param seed the shuffle's seed
     * @throws IllegalArgumentException for a batch size out of range
     */
    public IdxBatches(InMemoryDataset data, int[] indices, List<String> classes, int batch, boolean train, long seed) {
        super(indices.length, classes, batch, train, seed);
        this.data = data;
        this.indices = indices.clone();
    }

    /**
     * Splits {@code n} example indices at random into training and validation indices.
     *
     * @return {train, validation}
     */
    public static int[][] split(int n, double validationFraction, long seed) {
        int[] all = identity(n);
        shuffle(all, new Random(seed));
        int v = (int) Math.round(validationFraction * n);
        return new int[][] {Arrays.copyOfRange(all, v, n), Arrays.copyOfRange(all, 0, v)};
    }

    @Override
    protected DataSet load(int[] examples) {
        int[] picked = new int[examples.length];
        for (int i = 0; i < examples.length; i++) {
            picked[i] = indices[examples[i]];
        }
        InMemoryDataset.Batch b = data.batch(picked, 0, picked.length);
        return new DataSet(b.images(), oneHot(b.labels(), b.images().dataType()));
    }

    @Override
    public int inputColumns() {
        return (int) (data.images().length() / data.size());
    }
}
