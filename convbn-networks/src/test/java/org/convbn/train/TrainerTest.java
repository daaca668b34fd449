package org.convbn.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import org.convbn.core.Mode;
import org.convbn.nd4j.Optimizer;
import org.nd4j.linalg.learning.config.Nesterovs;
import org.convbn.net.ResNet;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/** The training loop on a synthetic two-class task, and the dataset helpers. */
class TrainerTest {

    /** Class 0: the top half brighter; class 1: the bottom half; plus noise. */
    static InMemoryDataset twoClasses(int n, long seed) {
        INDArray x = Nd4j.randn(seed, new long[] {n, 3, 32, 32}).castTo(DataType.FLOAT).muli(0.3);
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            y[i] = i % 2;
            x.get(NDArrayIndex.point(i), NDArrayIndex.all(), y[i] == 0 ? NDArrayIndex.interval(0, 16)
                    : NDArrayIndex.interval(16, 32), NDArrayIndex.all()).addi(1.0);
        }
        return new InMemoryDataset(x, y);
    }

    @Test
    void fitLearnsASeparableTaskAndReportsTheCurve() {
        ResNet net = ResNet.builder(ResNet.Depth.RESNET18).classes(2)
                .dataType(DataType.FLOAT).seed(3).mode(Mode.TRAIN).build();
        InMemoryDataset train = twoClasses(64, 1);
        InMemoryDataset test = twoClasses(32, 2);
        List<Trainer.Point> seen = new ArrayList<>();
        // 10 epochs of 4 steps: enough for the running statistics (momentum 0.1) that evaluation uses to settle.
        List<Trainer.Point> curve = Trainer.fit(net, train, test, new Optimizer(new Nesterovs(0.02, 0.9)), 10, 16, 16, 5,
                seen::add);
        assertEquals(seen, curve);
        assertEquals(List.of(0, 16, 32, 40), curve.stream().map(Trainer.Point::step).toList());
        assertEquals(10.0, curve.get(curve.size() - 1).epoch(), 1e-12);
        assertTrue(curve.get(curve.size() - 1).testAccuracy() >= 0.9, "accuracy " + curve);
        assertEquals(Mode.TRAIN, net.blocks().get(0).block().mode(), "accuracy() puts a TRAIN network back");
    }

    @Test
    void datasetHelpers() {
        InMemoryDataset d = twoClasses(4, 7);
        InMemoryDataset low = d.downsample(2);
        assertEquals(16, low.images().size(2));
        double expected = d.images().get(NDArrayIndex.point(1), NDArrayIndex.point(2), NDArrayIndex.interval(2, 4),
                NDArrayIndex.interval(6, 8)).meanNumber().doubleValue();
        assertEquals(expected, low.images().getDouble(1, 2, 1, 3), 1e-6);
        InMemoryDataset.Batch b = d.batch(new int[] {3, 0, 2}, 1, 2);
        assertArrayEquals(new int[] {0, 0}, b.labels(), "examples 0 and 2");
        assertTrue(b.images().get(NDArrayIndex.point(1)).equalsWithEps(d.images().get(NDArrayIndex.point(2)), 0));
        assertThrows(IllegalArgumentException.class, () -> d.downsample(3));
        assertThrows(IllegalArgumentException.class, () -> new InMemoryDataset(d.images(), new int[3]));
    }
}
