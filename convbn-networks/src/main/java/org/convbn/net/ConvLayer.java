package org.convbn.net;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.ConvConfig;
import org.convbn.core.Cost;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A conv with its normalisation and activation, one layer of an inverted-residual network: a ConvBN block and its
 * activation ({@link BatchNormLayer}; none for a projection), or a conv with GroupNorm and a proxy-normalised
 * activation. Arrays come from and go back to the network's arena. Not thread-safe.
 */
@NotThreadSafe
public sealed interface ConvLayer permits BatchNormLayer, ProxyNormLayer {
    /** @return the convolution */
    ConvConfig conv();

    /**
     * @param x feature map, not modified, kept until the backward
     * @return a new array, the caller's
     */
    INDArray forward(INDArray x);

    /**
     * @param g dL/d(output), modified (used as scratch), still the caller's to give back
     * @param sink receives the layer's parameter gradients
     * @param inputGradient whether dL/dx is needed (not for a network's first layer)
     * @return dL/dx, a new array, the caller's; null when not asked for
     */
    INDArray backward(INDArray g, GradientSink sink, boolean inputGradient);

    /** {@link #backward(INDArray, GradientSink, boolean)} with dL/dx. */
    default INDArray backward(INDArray g, GradientSink sink) {
        return backward(g, sink, true);
    }

    /**
     * @return whether the backward reads the forward's output (an in-place activation such as ReLU6), which the caller
     *         then keeps alive until the backward is done
     */
    default boolean backwardReadsOutput() {
        return false;
    }

    /** Drops and gives back what the last forward kept (not its input, which is the caller's). */
    void clearSaved();

    /** Adds what the forward keeps for the backward, beyond its block's saved tensors, to {@code into}. */
    void collectRetained(List<INDArray> into);

    /** @return the ConvBN block for the BN layer (its tensors are named by it), empty for a proxy-normalised one */
    Optional<NamedBlock> block();

    /** @return the trainable tensors that are not a ConvBN block's, by network name (live), empty for a BN layer */
    Map<String, INDArray> layerParameters();

    /** @return parameters and multiply-adds per sample on an input of {@code h x w} */
    Cost cost(int h, int w);
}
