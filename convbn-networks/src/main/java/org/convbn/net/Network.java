package org.convbn.net;

import net.jcip.annotations.NotThreadSafe;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

import org.convbn.core.Mode;
import org.convbn.core.RetainedBytes;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.PooledArena;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A classification network of ConvBN blocks and the layers between them ({@link ResNet}, {@link EfficientNet}):
 * what a training step, the state_dict naming and the benchmarks need of it. Input {@code [N, 3, H, W]}, logits
 * {@code [N, classes]}; tensor names are torchvision's.
 *
 * <p>Memory: the network owns one {@link PooledArena}, from which every activation, temporary and gradient of a
 * step comes; {@link #close()} frees it. Not thread-safe: one thread at a time.
 */
@NotThreadSafe
public interface Network extends AutoCloseable {
    /** @return the data type of every parameter and activation */
    DataType dataType();

    /** @return the number of classes the head predicts */
    int classes();

    /** @return the mode the network was last set to */
    Mode mode();

    /** Switches every trainable block (see {@link org.convbn.nd4j.ConvBNBlock#setMode}); drops a pending forward. */
    void setMode(Mode mode);

    /** @return every ConvBN block in forward order */
    List<NamedBlock> blocks();

    /**
     * @return the trainable tensors of the layers that are not ConvBN blocks (heads, squeeze-and-excitation convs),
     *         by network name, in module order; live arrays
     */
    Map<String, INDArray> layerParameters();

    /** @return every trainable tensor by network name (blocks in the current mode, then the other layers); live */
    Map<String, INDArray> parameters();

    /**
     * @param x {@code [N, 3, H, W]}, not modified, kept until backward
     * @return new logits {@code [N, classes]}, the caller's (give them back with {@code arena().release})
     * @throws IllegalArgumentException naming {@code x} (or the first block that refuses it) when its shape, size or
     *                                  data type does not fit
     */
    INDArray forward(INDArray x);

    /**
     * Backpropagates the last forward, handing each parameter gradient to {@code sink} as soon as it exists, and
     * gives back every activation it made. dL/d(input) is not computed.
     *
     * @param gradLogits dL/dlogits, not modified
     * @param sink receives every trainable tensor's gradient, head first
     * @throws IllegalStateException without a pending forward
     */
    void backward(INDArray gradLogits, GradientSink sink);

    /**
     * @param gradLogits dL/dlogits, not modified
     * @return the gradient of every trainable tensor by network name, new arrays from {@link #arena()}, the caller's
     */
    default Map<String, INDArray> backward(INDArray gradLogits) {
        Map<String, INDArray> grads = new LinkedHashMap<>();
        backward(gradLogits, GradientSink.into(grads));
        return grads;
    }

    /** Drops and gives back what the last forward kept for a backward (after an inference-only forward). */
    void clearSaved();

    /** @return the exact bytes held for backward right now, each array counted once */
    RetainedBytes retainedBytes();

    /** @return the kernels every block and layer computes on */
    Kernels kernels();

    /** @return the arena that owns the network's native memory during steps */
    PooledArena arena();

    /**
     * The exact bytes a network holds for its backward: every block's retained activations and weight-sized tensors
     * and the network's own arrays, each array counted once (a layer's output is also the next block's input).
     *
     * @param blocks the network's ConvBN blocks, read
     * @param own the arrays the network and its layers keep besides the blocks' (null entries are skipped)
     * @return the activation and weight bytes
     */
    static RetainedBytes retained(List<NamedBlock> blocks, List<INDArray> own) {
        Set<INDArray> activations = Collections.newSetFromMap(new IdentityHashMap<>());
        long weight = 0;
        for (NamedBlock b : blocks) {
            activations.addAll(b.block().retainedActivations());
            weight += b.block().retainedBytes().weightBytes();
        }
        own.stream().filter(Objects::nonNull).forEach(activations::add);
        long act = 0;
        for (INDArray a : activations) {
            act += a.length() * a.dataType().width();
        }
        return new RetainedBytes(act, weight);
    }

    /**
     * Frees the network's kernels (their cached primitives) and its arena: nothing the network handed out may be used
     * afterwards.
     */
    @Override
    void close();
}
