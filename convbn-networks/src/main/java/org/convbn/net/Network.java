package org.convbn.net;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.Cost;
import org.convbn.core.Mode;
import org.convbn.core.Precision;
import org.convbn.core.RetainedBytes;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.PooledArena;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A classification network of ConvBN blocks and the layers between them ({@link ResNet}, {@link MobileNetV2},
 * {@link MobileNetV3}, {@link EfficientNet}, {@link RegNet}; every one {@link Zoo} builds): what a training step,
 * fine-tuning, the state_dict naming and the benchmarks need of it. Input {@code [N, 3, H, W]}, logits
 * {@code [N, classes]}; tensor names are torchvision's.
 *
 * <p>Every network answers the questions fine-tuning code asks of any model (as timm's {@code get_classifier},
 * {@code reset_classifier} and {@code group_matcher} do): its {@link #name()}, its {@link #classifier()} and
 * {@link #replaceHead}, its {@link #freezableParts()} in forward order and {@link #setFrozenParts} to freeze a
 * prefix of them, and its {@link #cost}.
 *
 * <p>Memory: the network owns one {@link PooledArena}, from which every activation, temporary and gradient of a
 * step comes; {@link #close()} frees it. Not thread-safe: one thread at a time.
 */
@NotThreadSafe
public interface Network extends AutoCloseable {
    /**
     * @return the model's name: torchvision's builder name ({@code "resnet50"}, {@code "mobilenet_v2"}), with a
     *         suffix for a variant torchvision does not have ({@code "resnet50_g16"}, {@code "efficientnet_b0_proxy"})
     */
    String name();

    /**
     * @return the data type of every parameter, gradient, optimizer state and logit, and of the feature maps in
     *         {@link Precision#FULL} (see {@link #precision()})
     */
    DataType dataType();

    /** @return how the feature maps are stored: in {@link #dataType()}, or in bfloat16 */
    default Precision precision() {
        return kernels().precision();
    }

    /**
     * @return the linear layer that produces the logits (torchvision's {@code fc}, {@code classifier.1} or
     *         {@code classifier.3}); replaced by {@link #replaceHead}
     */
    Linear classifier();

    /**
     * Replaces the classifier by a new one for {@code classes} outputs with PyTorch's default initialisation: the
     * transfer-learning step from a network pretrained on one label set to another. Drops a pending forward.
     *
     * @param classes the new layer's output size, at least 1
     * @param seed the seed of its weight draw
     * @throws IllegalArgumentException if {@code classes < 1}
     */
    void replaceHead(int classes, long seed);

    /**
     * @return the module names of the parts a prefix of which can be frozen, in forward order: the stem, the stages,
     *         the last conv where there is one (e.g. {@code conv1, layer1..layer4}; {@code features.0..features.8});
     *         the classifier always trains
     */
    List<String> freezableParts();

    /** @return how many leading {@link #freezableParts()} are frozen */
    int frozenParts();

    /**
     * Freezes the first {@code n} of {@link #freezableParts()}: they get no gradient and are never updated, and they
     * run as an inference-only forward that keeps nothing for a backward. Their blocks compute with the fold of BN
     * into the conv: in TUNE (the fold recomputed per forward, the unfolded tensors kept exactly as loaded)
     * whatever the network's mode, or in DEPLOY when the network is in DEPLOY. Their BN uses the running statistics
     * in every mode (a frozen BN does not follow the batch even in TRAIN), and the backward stops at the first
     * trainable block, which computes no input gradient. The trainable part gets the gradients it gets in the whole
     * network. Drops a pending forward.
     *
     * @param n 0 (everything trains) .. {@code freezableParts().size()} (only the classifier trains)
     * @throws IllegalArgumentException naming the parts when {@code n} is out of range
     * @throws IllegalStateException when the network cannot freeze (its stages reconstruct activations)
     */
    void setFrozenParts(int n);

    /** @return the ConvBN blocks of the frozen prefix, in forward order */
    List<NamedBlock> frozenBlocks();

    /**
     * @param networkMode the mode the network is set to
     * @return the mode its frozen blocks run in: the fold, kept in DEPLOY, recomputed (TUNE) in every other mode
     */
    static Mode frozenMode(Mode networkMode) {
        return networkMode == Mode.DEPLOY ? Mode.DEPLOY : Mode.TUNE;
    }

    /**
     * @return whether dropout and stochastic depth are drawn in forwards (PyTorch's {@code train()}); false for a
     *         network without them
     */
    default boolean stochastic() {
        return false;
    }

    /**
     * Turns dropout and stochastic depth on (PyTorch's {@code train()}) or off (its {@code eval()}: evaluation, a
     * gradient check); independent of the BN mode; nothing for a network without them. Drops a pending forward.
     */
    default void setStochastic(boolean on) {}

    /**
     * Restarts the generator of the dropout and stochastic depth draws: the same seed gives the same masks from here
     * on (a run resumed at an epoch draws what the uninterrupted run drew); nothing for a network without them.
     */
    default void seedDraws(long seed) {}

    /**
     * The cost of every layer with parameters at an input of {@code height x width}, per sample, by tracing shapes
     * (nothing is computed): conv weights and biases, BN gamma and beta, linear layers; multiply-adds of convs and
     * linear layers (BN, activations, pooling and gates are elementwise and not counted, as in torchvision's
     * published figures).
     *
     * @return the cost per module name (convs under their conv's name), in forward order
     * @throws IllegalArgumentException naming the first layer the input is too small for
     */
    Map<String, Cost> cost(int height, int width);

    /** @return the sum of {@link #cost}: parameters and multiply-adds per sample */
    default Cost totalCost(int height, int width) {
        return cost(height, width).values().stream().reduce(Cost.ZERO, Cost::plus);
    }

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
