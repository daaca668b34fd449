package org.convbn.bench.jmh;

import org.convbn.core.ConvBNConfig;
import org.convbn.core.GroupedBlocks;
import org.convbn.core.Mode;
import org.convbn.nd4j.ConvBNBlock;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.PooledArena;
import org.convbn.nd4j.Optimizer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Nesterovs;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.TearDown;

/**
 * A grouped 3x3 ConvBN block's TUNE step against the dense one, on ResNet-50's layer1 shape (64 -> 64 channels at
 * 56x56, batch 8), with the loss of {@link BlockStepBenchmark}: what the multiply-adds {@code Cost} counts buy in time
 * with the per-group conv this library runs.
 */
public class GroupedBlockStepBenchmark extends AbstractBenchmark {
    /** Input channels per group: 64 is the dense conv, 16 the paper's, 1 depthwise. */
    @Param({"64", "16", "1"})
    public int groupSize;
    @Param("8")
    public int batch;

    private final PooledArena arena = Arena.pooled();
    private ConvBNBlock block;
    private INDArray x;
    private Optimizer sgd;

    @Setup
    public void setUp() {
        Nd4j.getMemoryManager().togglePeriodicGc(false);
        ConvBNConfig config = GroupedBlocks.grouped(64, 64, 3, 1, groupSize);
        block = BlockStepBenchmark.pooled(config, Mode.TUNE, arena);
        x = Nd4j.randn(DataType.FLOAT, batch, 64, 56, 56);
        sgd = new Optimizer(new Nesterovs(1e-3, 0.9));
    }

    @TearDown
    public void tearDown() {
        arena.close();
    }

    @Benchmark
    public INDArray step() {
        return BlockStepBenchmark.step(block, x, sgd);
    }
}
