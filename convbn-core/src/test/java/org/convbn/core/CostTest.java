package org.convbn.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Parameter and multiply-add counts from the conv formula, and the grouped presets' trade. */
class CostTest {

    @Test
    void fullConvCountsWeightsAndMultiplyAddsPerOutputPosition() {
        ConvConfig conv =
                ConvConfig.builder(64, 128).kernel(3).padding(1).bias(true).build();
        Cost c = Cost.of(conv, 56, 56);
        assertEquals(128L * 64 * 9 + 128, c.parameters());
        assertEquals(128L * 56 * 56 * 64 * 9, c.multiplyAdds());
        assertEquals(2 * c.multiplyAdds(), c.flops());
    }

    @Test
    void stridesAndPaddingEnterThroughTheOutputSize() {
        ConvConfig conv = ConvConfig.builder(3, 64)
                .kernel(7)
                .stride(2)
                .padding(3)
                .bias(false)
                .build();
        // 224 -> 112: ResNet's stem, 118,013,952 multiply-adds per image.
        assertEquals(118_013_952L, Cost.of(conv, 224, 224).multiplyAdds());
        assertEquals(9_408L, Cost.of(conv, 224, 224).parameters());
    }

    @Test
    void groupingDividesWeightsAndMultiplyAdds() {
        ConvBNConfig dense = GroupedBlocks.grouped(64, 64, 3, 1, 64);
        ConvBNConfig grouped = GroupedBlocks.grouped(64, 64, 3, 1);
        ConvBNConfig depthwise = GroupedBlocks.grouped(64, 64, 3, 1, 1);
        Cost d = Cost.of(dense, 28, 28);
        Cost g = Cost.of(grouped, 28, 28);
        Cost dw = Cost.of(depthwise, 28, 28);
        assertEquals(64L * 64 * 9 + 2 * 64, d.parameters(), "weights plus BN's gamma and beta");
        assertEquals(64L * 16 * 9 + 2 * 64, g.parameters());
        assertEquals(64L * 9 + 2 * 64, dw.parameters());
        assertEquals(d.multiplyAdds() / 4, g.multiplyAdds(), "4 groups of 16: a quarter of the work");
        assertEquals(d.multiplyAdds() / 64, dw.multiplyAdds());
        assertEquals(new Cost(d.parameters() + g.parameters(), d.multiplyAdds() + g.multiplyAdds()), d.plus(g));
        assertEquals(Cost.dense(2048, 1000), new Cost(2_049_000, 2_048_000));
    }

    @Test
    void presetsAreGeneralisedDepthwise() {
        assertTrue(GroupedBlocks.grouped(32, 32, 3, 1, 1).conv().isDepthwise());
        assertEquals(
                ConvConfig.builder(32, 64)
                        .kernel(3)
                        .padding(1)
                        .depthwise()
                        .bias(false)
                        .build(),
                GroupedBlocks.depthwise(32, 2, 3, 1).conv());
        assertEquals(1, GroupedBlocks.grouped(32, 32, 3, 1, 32).conv().groups());
        assertEquals(2, GroupedBlocks.grouped(32, 64, 3, 2).conv().groups());
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> GroupedBlocks.grouped(24, 24, 3, 1));
        assertTrue(
                e.getMessage().contains("groupSize")
                        && e.getMessage().contains("inChannels=24")
                        && e.getMessage().contains("16"),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> GroupedBlocks.grouped(32, 31, 3, 1));
        assertTrue(e.getMessage().contains("outChannels=31"), e.getMessage());
    }
}
