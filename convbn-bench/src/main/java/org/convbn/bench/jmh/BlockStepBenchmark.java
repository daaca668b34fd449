package org.convbn.bench.jmh;

import org.convbn.core.Mode;
import org.convbn.nd4j.BlockGradients;
import org.convbn.nd4j.ConvBNBlock;
import org.convbn.nd4j.ConvBNParameters;
import org.convbn.core.ConvBNConfig;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.PooledArena;
import org.convbn.nd4j.Optimizer;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.TearDown;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Nesterovs;

/**
 * One block's training step per mode on real ResNet-50 layer shapes, batch 8: forward, the loss
 * {@code L = mean(Z^2) / 2} (so {@code dL/dZ = Z / n}, a bounded problem that SGD does not drive to infinity over
 * thousands of iterations), backward, SGD update.
 */
public class BlockStepBenchmark extends AbstractBenchmark {
    @Param({"TRAIN", "EVAL", "DEPLOY", "TUNE"})
    public Mode mode;
    @Param({"LAYER1_3X3", "LAYER3_1X1"})
    public LayerShape shape;
    @Param("8")
    public int batch;

    private final PooledArena arena = Arena.pooled();
    private ConvBNBlock block;
    private INDArray x;
    private Optimizer sgd;

    @Setup
    public void setUp() {
        Nd4j.getMemoryManager().togglePeriodicGc(false);
        block = pooled(shape.config(), mode, arena);
        x = Nd4j.randn(DataType.FLOAT, shape.inputShape(batch));
        sgd = new Optimizer(new Nesterovs(1e-3, 0.9));
    }

    @TearDown
    public void tearDown() {
        arena.close();
    }

    /**
     * A block on the default kernels over a pooled arena, as a network runs them: a steady-state step reuses the
     * pool's memory instead of allocating (and page-faulting) every output and temporary afresh.
     */
    static ConvBNBlock pooled(ConvBNConfig config, Mode mode, Arena arena) {
        return ConvBNBlock.of(config, ConvBNParameters.initialize(config, DataType.FLOAT, 1), mode,
                Kernels.create(DataType.FLOAT, arena));
    }

    @Benchmark
    public INDArray step() {
        return step(block, x, sgd);
    }

    /** One step of {@code block} on {@code x} with the loss mean(Z^2)/2, giving back what it made; @return Z */
    static INDArray step(ConvBNBlock block, INDArray x, Optimizer sgd) {
        INDArray z = block.forward(x);
        BlockGradients g = block.backward(z.divi(z.length())); // dL/dZ of mean(Z^2)/2, in place: Z is done
        sgd.step(block.parameters(), g.parameters());
        Arena arena = block.kernels().arena();
        arena.release(z, g.input());
        g.parameters().values().forEach(arena::release);
        return z;
    }
}
