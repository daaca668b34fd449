package org.convbn.bench.jmh;

import org.convbn.core.ConvBNConfig;
import org.convbn.core.Mode;
import org.openjdk.jmh.annotations.Param;

/** One block's step ({@link AbstractBlockStepBenchmark}) per mode on real ResNet-50 layer shapes, batch 8. */
public class BlockStepBenchmark extends AbstractBlockStepBenchmark {
    @Param({"TRAIN", "EVAL", "DEPLOY", "TUNE"})
    public Mode mode;

    @Param({"LAYER1_3X3", "LAYER3_1X1"})
    public LayerShape shape;

    @Param("8")
    public int batch;

    @Override
    protected ConvBNConfig config() {
        return shape.config();
    }

    @Override
    protected Mode mode() {
        return mode;
    }

    @Override
    protected long[] inputShape() {
        return shape.inputShape(batch);
    }
}
