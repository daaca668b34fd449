package org.convbn.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class ConvConfigTest {

    @Test
    void outputSizeFollowsTheFormula() {
        // ResNet stem: 224, 7x7, stride 2, pad 3 -> 112.
        ConvConfig stem =
                ConvConfig.builder(3, 64).kernel(7).stride(2).padding(3).build();
        assertArrayEquals(new long[] {8, 64, 112, 112}, stem.outputShape(new long[] {8, 3, 224, 224}));
        // floor((7 + 2 - 2*(3-1) - 1) / 2) + 1 = 3
        ConvConfig dilated = ConvConfig.builder(1, 1)
                .kernel(3)
                .stride(2)
                .padding(1)
                .dilation(2)
                .build();
        assertEquals(3, dilated.outputHeight(7));
    }

    @Test
    void samePaddingKeepsCeilOfInputOverStride() {
        ConvConfig same = ConvConfig.builder(1, 1)
                .kernel(3)
                .stride(2)
                .padding(Padding.same())
                .build();
        assertEquals(4, same.outputHeight(7));
        assertEquals(4, same.outputHeight(8));
        // total = (4-1)*2 + 3 - 8 = 1: nothing before, one after.
        assertEquals(0, same.padTop(8));
        assertEquals(1, same.padTop(7));
    }

    @Test
    void depthwiseAndShapes() {
        ConvConfig dw = ConvConfig.builder(8, 16).depthwise().build();
        assertEquals(8, dw.groups());
        assertEquals(true, dw.isDepthwise());
        assertArrayEquals(new long[] {16, 1, 3, 3}, dw.weightShape());
        assertEquals(16 * 9, dw.weightCount());
    }

    @Test
    void samePaddingTakesNoSizes() {
        assertThrows(IllegalArgumentException.class, () -> new Padding(true, 1, 0));
    }
}
