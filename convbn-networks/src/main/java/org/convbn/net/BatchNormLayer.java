package org.convbn.net;

import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.ConvConfig;
import org.convbn.core.Cost;
import org.convbn.nd4j.kernel.Kernels;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A ConvBN block, then its activation: {@code a = act(block(x))} (torchvision's {@code Conv2dNormActivation}, or a
 * projection's conv + BN without one). Runs in its block's mode, on its kernels, with the output in their preferred
 * layout. For SiLU and hardswish it keeps the activation's input (the block's output) for its backward; for ReLU and
 * ReLU6 it reads the output at the backward, which the caller keeps alive until then (it is the next layer's input).
 */
@NotThreadSafe
public final class BatchNormLayer implements ConvLayer {
    private final NamedBlock block;
    private final ConvActivation activation;
    private final Kernels kernels;
    /** What the activation's backward reads: its input (owned) or its output (the caller's), between the passes. */
    private INDArray saved;

    /**
     * @param block the ConvBN block under its network names
     * @param activation what follows the BN
     */
    public BatchNormLayer(NamedBlock block, ConvActivation activation) {
        this.block = block;
        this.activation = Objects.requireNonNull(activation, "activation");
        this.kernels = block.block().kernels();
    }

    /** @return what follows the BN */
    public ConvActivation activation() {
        return activation;
    }

    @Override
    public boolean backwardReadsOutput() {
        return activation.readsOutput();
    }

    @Override
    public ConvConfig conv() {
        return block.block().config().conv();
    }

    @Override
    public INDArray forward(INDArray x) {
        clearSaved();
        INDArray z =
                block.forward(x, kernels.preferredLayout(block.block().config().channels()), false);
        INDArray a = activation.forward(kernels, z);
        if (activation != ConvActivation.IDENTITY) {
            saved = activation.readsOutput() ? a : z;
        }
        return a;
    }

    @Override
    public INDArray backward(INDArray g, GradientSink sink, boolean inputGradient) {
        if (saved != null) {
            activation.backwardInPlace(kernels, saved, g);
            releaseSaved();
        }
        return block.backward(g, inputGradient, sink);
    }

    private void releaseSaved() {
        if (saved != null && !activation.readsOutput()) {
            kernels.arena().release(saved);
        }
        saved = null;
    }

    @Override
    public void clearSaved() {
        block.block().clearSaved();
        releaseSaved();
    }

    @Override
    public void collectRetained(List<INDArray> into) {
        if (saved != null && !activation.readsOutput()) {
            into.add(saved); // an output read by the backward is the caller's, counted there
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
