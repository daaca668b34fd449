package org.convbn.net;

import net.jcip.annotations.NotThreadSafe;

import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.convbn.core.ConvConfig;
import org.convbn.core.Cost;
import org.convbn.nd4j.kernel.Kernels;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A ConvBN block, then SiLU unless it is a projection: {@code a = silu(block(x))}. Runs in its block's mode, on its
 * kernels, with the output in their preferred layout. Keeps the SiLU's input (the block's output) for its backward.
 */
@NotThreadSafe
public final class BatchNormLayer implements ConvLayer {
    private final NamedBlock block;
    private final boolean silu;
    private final Kernels kernels;
    private INDArray preActivation;

    /**
     * @param block the ConvBN block under its network names
     * @param silu whether SiLU follows
     */
    public BatchNormLayer(NamedBlock block, boolean silu) {
        this.block = block;
        this.silu = silu;
        this.kernels = block.block().kernels();
    }

    @Override
    public ConvConfig conv() {
        return block.block().config().conv();
    }

    @Override
    public INDArray forward(INDArray x) {
        clearSaved();
        INDArray z = block.block().forward(x, kernels.preferredLayout(block.block().config().channels()));
        if (!silu) {
            return z;
        }
        preActivation = z;
        return kernels.silu(z);
    }

    @Override
    public INDArray backward(INDArray g, GradientSink sink, boolean inputGradient) {
        if (silu) {
            kernels.siluBackwardInPlace(preActivation, g);
            kernels.arena().release(preActivation);
            preActivation = null;
        }
        return block.backward(g, inputGradient, sink);
    }

    @Override
    public void clearSaved() {
        block.block().clearSaved();
        kernels.arena().release(preActivation);
        preActivation = null;
    }

    @Override
    public void collectRetained(List<INDArray> into) {
        if (preActivation != null) {
            into.add(preActivation);
        }
    }

    @Override
    public Optional<NamedBlock> block() {
        return Optional.of(block);
    }

    @Override
    public Map<String, INDArray> layerParameters() {
        return Map.of();
    }

    @Override
    public Cost cost(int h, int w) {
        return Cost.of(block.block().config(), h, w);
    }
}
