package org.convbn.train;

import java.util.Arrays;
import java.util.Collections;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.train.data.FashionMnist;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Labelled images held in memory.
 *
 * @param images {@code [n, C, H, W]}
 * @param labels {@code n} class indices
 */
@NotThreadSafe
public record InMemoryDataset(INDArray images, int[] labels) {

    public InMemoryDataset {
        if (images.rank() != 4 || images.size(0) != labels.length) {
            throw new IllegalArgumentException("images, labels: expected [n, C, H, W] and n labels, got "
                    + Arrays.toString(images.shape()) + " and " + labels.length);
        }
    }

    /**
     * The first {@code limit} examples of a Fashion-MNIST split as {@code [n, channels, 28, 28]} in [0, 1], the
     * gray value repeated over the channels (3 for networks built for RGB input), standardised with Fashion-MNIST's
     * mean 0.286 and standard deviation 0.353.
     */
    public static InMemoryDataset of(FashionMnist.Split split, int limit, int channels, DataType type) {
        int n = Math.min(limit, split.size());
        int h = split.images().shape()[1];
        int w = split.images().shape()[2];
        float[] values = new float[n * h * w];
        for (int i = 0; i < values.length; i++) {
            values[i] = (split.images().get(i) / 255f - 0.286f) / 0.353f;
        }
        INDArray gray = Nd4j.create(values, new long[] {n, 1, h, w});
        INDArray images = Nd4j.concat(1, Collections.nCopies(channels, gray).toArray(new INDArray[0]));
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) {
            labels[i] = split.labels().get(i);
        }
        return new InMemoryDataset(images.castTo(type), labels);
    }

    /** @return the number of examples */
    public int size() {
        return labels.length;
    }

    /**
     * @param factor the downsampling factor, dividing H and W
     * @return the images averaged over {@code factor x factor} tiles (a lower resolution), same labels
     */
    public InMemoryDataset downsample(int factor) {
        long n = images.size(0);
        long c = images.size(1);
        long h = images.size(2);
        long w = images.size(3);
        if (factor < 1 || h % factor != 0 || w % factor != 0) {
            throw new IllegalArgumentException("factor: expected a divisor of " + h + " and " + w + ", got " + factor);
        }
        INDArray tiles = images.dup('c').reshape('c', n, c, h / factor, factor, w / factor, factor);
        return new InMemoryDataset(tiles.mean(3, 5), labels);
    }

    /**
     * @param order example indices
     * @param from first position in {@code order}
     * @param count examples to take
     * @return a new batch array of those examples, and their labels
     */
    public Batch batch(int[] order, int from, int count) {
        long[] shape = images.shape().clone();
        shape[0] = count;
        INDArray x = Nd4j.createUninitialized(images.dataType(), shape);
        int[] y = new int[count];
        for (int j = 0; j < count; j++) {
            int i = order[from + j];
            x.get(NDArrayIndex.point(j)).assign(images.get(NDArrayIndex.point(i)));
            y[j] = labels[i];
        }
        return new Batch(x, y);
    }

    /**
     * A batch.
     *
     * @param images {@code [b, C, H, W]}
     * @param labels {@code b} labels
     */
    @NotThreadSafe
    public record Batch(INDArray images, int[] labels) {}
}
