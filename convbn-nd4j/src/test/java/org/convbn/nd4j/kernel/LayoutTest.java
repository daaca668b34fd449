package org.convbn.nd4j.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** The layouts' shapes, the block chosen per channel count, and ND4J's kernels converting between every pair. */
class LayoutTest {

    @Test
    void shapesAndBlocks() {
        INDArray b16 = Nd4j.create(DataType.FLOAT, 2, 3, 5, 7, 16);
        assertEquals(Layout.BLOCKED16, Layout.of(b16));
        assertArrayEquals(new long[] {2, 48, 5, 7}, Layout.logicalShape(b16));
        assertArrayEquals(new long[] {2, 6, 5, 7, 8}, Layout.BLOCKED8.physicalShape(new long[] {2, 48, 5, 7}));
        assertNull(Layout.ofOrNull(Nd4j.create(DataType.FLOAT, 2, 3, 5, 7, 4)));
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class, () -> Layout.BLOCKED16.physicalShape(new long[] {2, 24, 5, 7}));
        assertTrue(e.getMessage().contains("divisible by 16"), e.getMessage());
    }

    @Test
    void theLargestFittingBlockUpToThePreferredOne() {
        assertEquals(Layout.BLOCKED16, Layout.largestFitting(Layout.BLOCKED16, 32));
        assertEquals(Layout.BLOCKED8, Layout.largestFitting(Layout.BLOCKED16, 24));
        assertEquals(Layout.NCHW, Layout.largestFitting(Layout.BLOCKED16, 3));
        assertEquals(Layout.BLOCKED8, Layout.largestFitting(Layout.BLOCKED8, 32));
        assertEquals(Layout.NCHW, Layout.largestFitting(Layout.NCHW, 32));
    }

    @ParameterizedTest
    @EnumSource(Layout.class)
    void nd4jKernelsConvertBetweenEveryPairOfLayouts(Layout from) {
        Nd4jKernels k = new Nd4jKernels(DataType.FLOAT, Arena.direct());
        INDArray x = Nd4j.rand(DataType.FLOAT, 2, 32, 3, 4);
        INDArray in = k.relayout(x, from);
        for (Layout to : Layout.values()) {
            INDArray moved = k.relayout(in, to);
            assertEquals(to, Layout.of(moved));
            assertEquals(x, k.relayout(moved, Layout.NCHW), from + " -> " + to);
            if (to.isBlocked()) {
                // channel c of sample n at (h, w) lies at [n, c / b, h, w, c % b]
                assertEquals(x.getDouble(1, 21, 2, 3), moved.getDouble(1, 21 / to.block(), 2, 3, 21 % to.block()));
            }
        }
    }
}
