package org.convbn.net;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.ConvConfig;
import org.convbn.core.Cost;
import org.convbn.nd4j.BlockGradients;
import org.convbn.nd4j.ConvProxyNormBlock;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A conv, GroupNorm and a proxy-normalised activation ({@link ConvProxyNormBlock}; SiLU, or the identity for a
 * projection), in place of a ConvBN block and its activation. No batch statistics: the same function in every mode.
 * The block computes on the network's kernels, so its outputs and gradients come from the network's arena.
 * Tensor names: {@code convName.weight} and {@code normName.gamma}, {@code .beta}, {@code .beta_tilde},
 * {@code .gamma_tilde}.
 */
@NotThreadSafe
public final class ProxyNormLayer implements ConvLayer {
    private final String convName;
    private final String normName;
    private final ConvProxyNormBlock block;

    /**
     * @param convName the conv's module name, e.g. {@code features.0.0}
     * @param normName the normalisation's module name, e.g. {@code features.0.1}
     * @param block the block, on the network's kernels
     */
    public ProxyNormLayer(String convName, String normName, ConvProxyNormBlock block) {
        this.convName = convName;
        this.normName = normName;
        this.block = block;
    }

    @Override
    public ConvConfig conv() {
        return block.conv();
    }

    @Override
    public INDArray forward(INDArray x) {
        return block.forward(x);
    }

    @Override
    public INDArray backward(INDArray g, GradientSink sink, boolean inputGradient) {
        Map<String, INDArray> parameters = block.parameters().trainable();
        BlockGradients grads = block.backward(g, inputGradient);
        grads.parameters().forEach((k, v) -> sink.accept(name(k), parameters.get(k), v));
        return grads.input();
    }

    private String name(String blockName) {
        int dot = blockName.indexOf('.');
        String module = blockName.startsWith("conv.") ? convName : normName;
        return module + blockName.substring(dot);
    }

    @Override
    public void clearSaved() {
        block.clearSaved();
    }

    @Override
    public void collectRetained(List<INDArray> into) {
        into.addAll(block.retainedActivations()); // its input (also counted where it was made), y and the statistics
    }

    @Override
    public Optional<NamedBlock> block() {
        return Optional.empty();
    }

    @Override
    public Map<String, INDArray> layerParameters() {
        Map<String, INDArray> m = new LinkedHashMap<>();
        block.parameters().trainable().forEach((k, v) -> m.put(name(k), v));
        return m;
    }

    @Override
    public Cost cost(int h, int w) {
        long normParameters = 4L * block.conv().outChannels();
        return Cost.of(block.conv(), h, w).plus(new Cost(normParameters, 0));
    }
}
