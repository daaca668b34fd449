package org.convbn.net;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Map;
import org.convbn.core.Cost;
import org.convbn.core.Mode;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/** The networks' cost counters. */
class NetworkCostTest {
    /** The counters reproduce torchvision's parameter counts, and one block's multiply-adds by hand. */
    @Test
    void networkCountersMatchTorchvision() {
        ResNet r18 = ResNet.builder(ResNet.Variant.RESNET18)
                .classes(1000)
                .dataType(DataType.FLOAT)
                .seed(1)
                .mode(Mode.EVAL)
                .build();
        ResNet r50 = ResNet.builder(ResNet.Variant.RESNET50)
                .classes(1000)
                .dataType(DataType.FLOAT)
                .seed(1)
                .mode(Mode.EVAL)
                .build();
        assertEquals(11_689_512L, r18.totalCost(224, 224).parameters(), "torchvision resnet18");
        assertEquals(25_557_032L, r50.totalCost(224, 224).parameters(), "torchvision resnet50");
        Map<String, Cost> costs = r50.cost(224, 224);
        assertEquals(54, costs.size(), "53 blocks and the head");
        assertEquals(56L * 56 * 64 * 64 * 9, costs.get("layer1.0.conv2").multiplyAdds());
        assertEquals(7L * 7 * 2048 * 512, costs.get("layer4.2.conv3").multiplyAdds());
        assertEquals(28L * 28 * 512 * 256, costs.get("layer2.0.downsample.0").multiplyAdds(), "stride 2 from 56");
    }
}
