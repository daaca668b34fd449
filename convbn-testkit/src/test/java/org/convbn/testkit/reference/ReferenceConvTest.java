package org.convbn.testkit.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.convbn.core.ConvConfig;
import org.convbn.core.Padding;
import org.junit.jupiter.api.Test;

/** The naive conv against values worked out by hand and against an independent formulation of groups. */
class ReferenceConvTest {
    /** Sums of a few float64 products of small integers are exact. */
    private static final double EXACT = 0;
    /** Same sums in another order: a few ulps of values of order 10. */
    private static final double REORDERED = 1e-12;

    @Test
    void handWorkedThreeByThreeWithPaddingAndBias() {
        ConvConfig c = ConvConfig.builder(1, 1).kernel(3).padding(1).build();
        Tensor x = new Tensor(new int[] {1, 1, 2, 2}, new double[] {1, 2, 3, 4});
        Tensor w = new Tensor(new int[] {1, 1, 3, 3}, new double[] {1, 0, 0, 0, 1, 0, 0, 0, 2});
        Tensor b = new Tensor(new int[] {1}, new double[] {10});
        // out[i,j] = x[i-1,j-1] + x[i,j] + 2*x[i+1,j+1] + 10, zero outside the 2x2 input
        assertArrayEquals(
                new double[] {1 + 8 + 10, 2 + 10, 3 + 10, 1 + 4 + 10},
                ReferenceConv.forward(c, x, w, b).data(),
                EXACT);
    }

    @Test
    void sameStrideTwoPadsTheExtraRowAfter() {
        // H = 4, k = 2, s = 2: out = 2, total padding = (2-1)*2 + 2 - 4 = 0; H = 5: out = 3, total = 1 -> 0 before, 1
        // after.
        ConvConfig c = ConvConfig.builder(1, 1)
                .kernel(2)
                .stride(2)
                .padding(Padding.same())
                .bias(false)
                .build();
        Tensor x = new Tensor(new int[] {1, 1, 1, 5}, new double[] {1, 2, 3, 4, 5});
        ConvConfig c1 = ConvConfig.builder(1, 1)
                .kernel(1, 2)
                .stride(1, 2)
                .padding(Padding.same())
                .bias(false)
                .build();
        Tensor w = new Tensor(new int[] {1, 1, 1, 2}, new double[] {1, 10});
        assertEquals(3, c.outputWidth(5));
        assertEquals(0, c.padLeft(5));
        assertArrayEquals(
                new double[] {1 + 20, 3 + 40, 5},
                ReferenceConv.forward(c1, x, w, null).data(),
                EXACT);
    }

    @Test
    void groupedEqualsDenseWithBlockDiagonalWeight() {
        int groups = 2;
        ConvConfig grouped = ConvConfig.builder(4, 6)
                .kernel(3)
                .padding(1)
                .dilation(2)
                .groups(groups)
                .build();
        ConvConfig dense =
                ConvConfig.builder(4, 6).kernel(3).padding(1).dilation(2).build();
        SplittableRandom rng = new SplittableRandom(5);
        Tensor x = Tensor.uniform(rng, -1, 1, 2, 4, 6, 7);
        Tensor w = Tensor.uniform(rng, -1, 1, 6, 2, 3, 3);
        Tensor b = Tensor.uniform(rng, -1, 1, 6);
        Tensor masked = Tensor.zeros(6, 4, 3, 3);
        for (int o = 0; o < 6; o++) {
            int group = o / 3;
            for (int ci = 0; ci < 2; ci++) {
                for (int k = 0; k < 9; k++) {
                    masked.data()[(o * 4 + group * 2 + ci) * 9 + k] = w.data()[(o * 2 + ci) * 9 + k];
                }
            }
        }
        assertArrayEquals(
                ReferenceConv.forward(dense, x, masked, b).data(),
                ReferenceConv.forward(grouped, x, w, b).data(),
                REORDERED);
    }

    @Test
    void backwardHalvesAreAdjointsOfForward() {
        // <conv(X, W), G> = <X, convT_data(G, W)> = <W, conv_bp_weight(X, G)> for a bias-free conv.
        ConvConfig c = ConvConfig.builder(4, 4)
                .kernel(3)
                .stride(2)
                .padding(Padding.same())
                .groups(4)
                .bias(false)
                .build();
        SplittableRandom rng = new SplittableRandom(9);
        Tensor x = Tensor.uniform(rng, -1, 1, 2, 4, 7, 5);
        Tensor w = Tensor.uniform(rng, -1, 1, 4, 1, 3, 3);
        Tensor y = ReferenceConv.forward(c, x, w, null);
        Tensor g = Tensor.uniform(rng, -1, 1, y.shape());
        double lhs = ReferenceGradientTest.dot(y, g);
        assertEquals(lhs, ReferenceGradientTest.dot(x, ReferenceConv.backwardInput(c, x.shape(), w, g)), REORDERED);
        assertEquals(lhs, ReferenceGradientTest.dot(w, ReferenceConv.backwardWeight(c, x, g)), REORDERED);
    }
}
