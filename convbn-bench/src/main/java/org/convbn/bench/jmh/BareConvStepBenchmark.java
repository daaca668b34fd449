package org.convbn.bench.jmh;

import org.convbn.core.ConvConfig;
import org.convbn.nd4j.Conv2dOps;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Setup;

/** The floor: a bare conv forward and backward (no BN at all) on the same shapes as {@link BlockStepBenchmark}. */
public class BareConvStepBenchmark extends AbstractBenchmark {
    @Param({"LAYER1_3X3", "LAYER3_1X1"})
    public LayerShape shape;

    @Param("8")
    public int batch;

    private ConvConfig conv;
    private INDArray x;
    private INDArray w;
    private INDArray gradOutput;

    @Setup
    public void setUp() {
        Nd4j.getMemoryManager().togglePeriodicGc(false);
        conv = shape.config().conv();
        x = Nd4j.randn(DataType.FLOAT, shape.inputShape(batch));
        w = Nd4j.randn(DataType.FLOAT, conv.weightShape()).muli(0.05);
        gradOutput = Nd4j.randn(DataType.FLOAT, conv.outputShape(x.shape()));
    }

    @Benchmark
    public INDArray step() {
        INDArray y = Conv2dOps.forward(conv, x, w, null);
        Kernels.ConvGradients g = Conv2dOps.backward(conv, x, w, null, gradOutput);
        w.subi(g.weight().muli(1e-3));
        Arena.direct().release(y, g.input(), g.weight());
        return y;
    }
}
