package org.convbn.bench.jmh;

import org.convbn.core.ConvBNConfig;
import org.convbn.core.Mode;
import org.convbn.nd4j.BlockGradients;
import org.convbn.nd4j.ConvBNBlock;
import org.convbn.nd4j.ConvBNParameters;
import org.convbn.nd4j.Optimizer;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.PooledArena;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Nesterovs;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.TearDown;

/**
 * One block's training step, float32, on the default kernels over a pooled arena (as a network runs its blocks: a
 * steady-state step reuses the pool's memory instead of allocating and page-faulting every output afresh):
 * forward, the loss {@code L = mean(Z^2) / 2} (so {@code dL/dZ = Z / n}, a bounded problem that SGD does not drive
 * to infinity over thousands of iterations), backward, a Nesterov SGD update. Subclasses say which block, in which
 * mode, on which input.
 */
public abstract class AbstractBlockStepBenchmark extends AbstractBenchmark {
    private final PooledArena arena = Arena.pooled();
    private ConvBNBlock block;
    private INDArray x;
    private Optimizer sgd;

    /** @return the block's configuration (read at setup, after the parameters are injected) */
    protected abstract ConvBNConfig config();

    /** @return the mode the block steps in */
    protected abstract Mode mode();

    /** @return the input shape */
    protected abstract long[] inputShape();

    @Setup
    public void setUp() {
        Nd4j.getMemoryManager().togglePeriodicGc(false);
        ConvBNConfig config = config();
        block = ConvBNBlock.of(
                config,
                ConvBNParameters.initialize(config, DataType.FLOAT, 1),
                mode(),
                Kernels.create(DataType.FLOAT, arena));
        x = Nd4j.randn(DataType.FLOAT, inputShape());
        sgd = new Optimizer(new Nesterovs(1e-3, 0.9));
    }

    @TearDown
    public void tearDown() {
        arena.close();
    }

    @Benchmark
    public INDArray step() {
        INDArray z = block.forward(x);
        BlockGradients g = block.backward(z.divi(z.length())); // dL/dZ of mean(Z^2)/2, in place: Z is done
        sgd.step(block.parameters(), g.parameters());
        arena.release(z, g.input());
        g.parameters().values().forEach(arena::release);
        return z;
    }
}
