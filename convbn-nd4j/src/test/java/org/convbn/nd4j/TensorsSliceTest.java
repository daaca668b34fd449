package org.convbn.nd4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.PooledArena;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Views of arrays that sit inside a larger buffer (a pooled arena's) at an offset past their own length: where
 * ND4J's {@code get} returns an empty rank-0 array, {@link Tensors#slice} returns the channels, and writes reach the
 * array.
 */
class TensorsSliceTest {
    @Test
    void slicesOfPooledArraysAtAnyOffsetAreTheRightViews() {
        for (int before : new int[] {0, 1000, 1280, 5000}) {
            try (PooledArena arena = Arena.pooled()) {
                if (before > 0) {
                    arena.allocate(DataType.FLOAT, before);
                }
                INDArray a = arena.allocate(DataType.FLOAT, 2, 8, 11, 9).assign(Nd4j.rand(DataType.FLOAT, 2, 8, 11, 9));
                INDArray want = a.dup()
                        .get(NDArrayIndex.all(), NDArrayIndex.interval(4, 8), NDArrayIndex.all(), NDArrayIndex.all());
                INDArray got = Tensors.slice(a, 1, 4, 8);
                assertArrayEquals(want.shape(), got.shape(), "offset " + a.offset());
                assertArrayEquals(Fixtures.values(want), Fixtures.values(got), "offset " + a.offset());
                INDArray original = a.dup();
                Tensors.slice(Tensors.slice(got, 2, 1, 11), 3, 1, 9).assign(7);
                INDArray after = a.dup();
                for (int n = 0; n < 2; n++) {
                    for (int c = 0; c < 8; c++) {
                        for (int h = 0; h < 11; h++) {
                            for (int w = 0; w < 9; w++) {
                                double expected = c >= 4 && h >= 1 && w >= 1 ? 7 : original.getDouble(n, c, h, w);
                                assertEquals(expected, after.getDouble(n, c, h, w), "writes reach exactly the window");
                            }
                        }
                    }
                }
            }
        }
    }
}
