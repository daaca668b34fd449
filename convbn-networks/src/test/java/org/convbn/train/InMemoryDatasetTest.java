package org.convbn.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/** The in-memory dataset's downsampling and batches, on a synthetic two-class task. */
class InMemoryDatasetTest {
    /** Class 0: the top half brighter; class 1: the bottom half; plus noise. */
    static InMemoryDataset twoClasses(int n, long seed) {
        INDArray x = Nd4j.randn(seed, new long[] {n, 3, 32, 32})
                .castTo(DataType.FLOAT)
                .muli(0.3);
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            y[i] = i % 2;
            x.get(
                            NDArrayIndex.point(i),
                            NDArrayIndex.all(),
                            y[i] == 0 ? NDArrayIndex.interval(0, 16) : NDArrayIndex.interval(16, 32),
                            NDArrayIndex.all())
                    .addi(1.0);
        }
        return new InMemoryDataset(x, y);
    }

    @Test
    void datasetHelpers() {
        InMemoryDataset d = twoClasses(4, 7);
        InMemoryDataset low = d.downsample(2);
        assertEquals(16, low.images().size(2));
        double expected = d.images()
                .get(
                        NDArrayIndex.point(1),
                        NDArrayIndex.point(2),
                        NDArrayIndex.interval(2, 4),
                        NDArrayIndex.interval(6, 8))
                .meanNumber()
                .doubleValue();
        assertEquals(expected, low.images().getDouble(1, 2, 1, 3), 1e-6);
        InMemoryDataset.Batch b = d.batch(new int[] {3, 0, 2}, 1, 2);
        assertArrayEquals(new int[] {0, 0}, b.labels(), "examples 0 and 2");
        assertTrue(
                b.images().get(NDArrayIndex.point(1)).equalsWithEps(d.images().get(NDArrayIndex.point(2)), 0));
        assertThrows(IllegalArgumentException.class, () -> d.downsample(3));
        assertThrows(IllegalArgumentException.class, () -> new InMemoryDataset(d.images(), new int[3]));
    }
}
