package org.convbn.bench.jmh;

import org.convbn.core.ConvBNConfig;
import org.convbn.core.GroupedBlocks;
import org.convbn.core.Mode;
import org.openjdk.jmh.annotations.Param;

/**
 * A grouped 3x3 ConvBN block's step against the dense one, on ResNet-50's layer1 shape (64 -> 64 channels at 56x56,
 * batch 8), in the fine-tuning modes, with the step of {@link AbstractBlockStepBenchmark}: what the multiply-adds
 * {@code Cost} counts buy in time. Run it once per kernel set ({@code -jvmArgsAppend -Dconvbn.kernels=nd4j} for
 * libnd4j's ops).
 */
public class GroupedBlockStepBenchmark extends AbstractBlockStepBenchmark {
    /** Input channels per group: 64 is the dense conv, 16 the paper's, 1 depthwise. */
    @Param({"64", "16", "1"})
    public int groupSize;

    @Param("8")
    public int batch;

    @Param({"EVAL", "DEPLOY", "TUNE"})
    public Mode mode;

    @Override
    protected ConvBNConfig config() {
        return GroupedBlocks.grouped(64, 64, 3, 1, groupSize);
    }

    @Override
    protected Mode mode() {
        return mode;
    }

    @Override
    protected long[] inputShape() {
        return new long[] {batch, 64, 56, 56};
    }
}
