package org.convbn.net;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.Layout;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A residual unit of ConvBN blocks: the main path runs its blocks with a ReLU between consecutive ones, the
 * shortcut is the identity or a downsampling ConvBN block, and a ReLU follows their sum:
 * {@code out = relu(main(x) + shortcut(x))}. Two 3x3 blocks make ResNet's basic block, 1x1 / 3x3 / 1x1 its
 * bottleneck.
 *
 * <p>Runs on its first block's {@link Kernels} (all its blocks must share their arena) and keeps feature maps in
 * the kernels' preferred layout. Keeps the ReLU outputs (for their backward; they are also the next blocks'
 * inputs, which those blocks keep anyway) and whatever the blocks keep in their mode; owns them and its output
 * until its backward.
 */
@NotThreadSafe
public final class ResidualUnit {
    private final List<NamedBlock> main;
    private final NamedBlock shortcut;
    private final Kernels kernels;
    private final List<INDArray> reluOutputs = new ArrayList<>();
    private INDArray output;
    private double alpha = 1.0;

    /**
     * @param main the main path's blocks, at least one
     * @param shortcut the downsampling block, or null for the identity
     */
    public ResidualUnit(List<NamedBlock> main, NamedBlock shortcut) {
        if (main.isEmpty()) {
            throw new IllegalArgumentException("main: expected at least one block, got none");
        }
        this.main = List.copyOf(main);
        this.shortcut = shortcut;
        this.kernels = main.get(0).block().kernels();
        for (NamedBlock b : blocks()) {
            if (b.block().kernels().arena() != kernels.arena()) {
                throw new IllegalArgumentException("main, shortcut: expected blocks sharing one arena, got "
                        + b.convName() + " on " + b.block().kernels().arena() + " and "
                        + main.get(0).convName()
                        + " on " + kernels.arena());
            }
        }
    }

    /** @return the kernels the unit computes its ReLUs and sums on */
    Kernels kernels() {
        return kernels;
    }

    private Layout layout(NamedBlock b) {
        return kernels.preferredLayout(b.block().config().channels());
    }

    /**
     * @param x not modified, kept by the first blocks until backward
     * @return a new output array, owned by this unit: its backward gives it back, so the caller may read it until
     *         then
     */
    public INDArray forward(INDArray x) {
        return forward(x, 1.0, false);
    }

    /**
     * {@code relu(main(x) + alpha * x)} for an identity shortcut ({@code alpha} must be 1 with a downsampling
     * one), optionally replaying the blocks' last forward (see {@link org.convbn.nd4j.ConvBNBlock#forwardReplay}).
     *
     * @param x not modified, kept by the first blocks until backward
     * @param alpha scale of the identity shortcut
     * @param replay whether the blocks replay their last forward's batch statistics (TRAIN)
     * @return a new output array, owned by this unit until {@link #backward} or {@link #releaseOwnership}
     * @throws IllegalArgumentException if {@code alpha != 1} with a downsampling shortcut
     */
    public INDArray forward(INDArray x, double alpha, boolean replay) {
        if (shortcut != null && alpha != 1.0) {
            throw new IllegalArgumentException("alpha: expected 1 with a downsampling shortcut, got " + alpha);
        }
        clearSaved();
        this.alpha = alpha;
        INDArray h = x;
        for (int i = 0; i < main.size(); i++) {
            NamedBlock b = main.get(i);
            h = b.forward(h, layout(b), replay);
            if (i < main.size() - 1) {
                kernels.reluInPlace(h);
                reluOutputs.add(h);
            }
        }
        if (shortcut == null) {
            kernels.addInPlace(h, x, alpha);
        } else {
            INDArray s = shortcut.forward(x, layout(shortcut), replay);
            kernels.addInPlace(h, s, 1.0);
            kernels.arena().release(s);
        }
        kernels.reluInPlace(h);
        output = h;
        return output;
    }

    /**
     * Drops everything the last forward kept for backward (blocks' saved tensors, ReLU outputs) and hands its
     * output over to the caller, who then owns it: for a stage that recomputes instead of keeping.
     */
    public void releaseOwnership() {
        for (NamedBlock b : blocks()) {
            b.block().clearSaved();
        }
        kernels.arena().release(reluOutputs.toArray(new INDArray[0]));
        reluOutputs.clear();
        output = null;
    }

    /**
     * Backpropagates the last forward and gives back what it made (ReLU outputs, the output) and the gradients it
     * made on the way.
     *
     * @param g dL/d(out), not modified
     * @param sink receives every block's parameter gradients
     * @return dL/dx, a new array owned by the caller
     */
    public INDArray backward(INDArray g, GradientSink sink) {
        return backward(g, sink, false, true);
    }

    /**
     * As {@link #backward(INDArray, GradientSink)}, taking ownership of {@code g}: its memory becomes the gradient
     * of the sum, one feature map less held during the unit's backward.
     *
     * @param g dL/d(out), the caller's no more
     */
    public INDArray backwardConsuming(INDArray g, GradientSink sink) {
        return backward(g, sink, true, true);
    }

    /**
     * As {@link #backwardConsuming}, computing no dL/dx: the first main block and the shortcut skip their
     * backward-data convs (for the first trainable unit after a frozen prefix).
     */
    public void backwardConsumingWithoutInputGradient(INDArray g, GradientSink sink) {
        backward(g, sink, true, false);
    }

    private INDArray backward(INDArray g, GradientSink sink, boolean consume, boolean inputGradient) {
        INDArray gSum;
        if (consume) {
            kernels.reluBackwardInPlace(output, g);
            gSum = g;
        } else {
            gSum = kernels.reluBackward(output, g);
        }
        // The output was the next unit's input (its backward is done) and the final ReLU's: done with.
        kernels.arena().release(output);
        output = null;
        // A downsampling shortcut first: then gSum is done with once the last main block has used it, and the
        // shortcut's weight gradient is applied before the main path's feature maps are made.
        INDArray dShortcut = shortcut == null ? null : shortcut.backward(gSum, inputGradient, sink);
        INDArray d = gSum;
        for (int i = main.size() - 1; i >= 0; i--) {
            INDArray dBlockInput = main.get(i).backward(d, i > 0 || inputGradient, sink);
            if (d != gSum || shortcut != null) {
                kernels.arena().release(d);
            }
            d = dBlockInput;
            if (i > 0) {
                // This ReLU's output was block i's input (its backward is done) and is done with after its own.
                INDArray relu = reluOutputs.set(i - 1, null);
                kernels.reluBackwardInPlace(relu, d);
                kernels.arena().release(relu);
            }
        }
        reluOutputs.clear();
        if (!inputGradient) {
            if (shortcut == null) {
                kernels.arena().release(gSum);
            }
            return null;
        }
        if (shortcut == null) {
            kernels.addInPlace(d, gSum, alpha); // the identity shortcut's gradient, scaled as its forward was
            kernels.arena().release(gSum);
        } else {
            kernels.addInPlace(d, dShortcut, 1.0);
            kernels.arena().release(dShortcut);
        }
        return d;
    }

    /** Drops and gives back what the last forward kept, its output included (after an inference-only forward). */
    void clearSaved() {
        INDArray out = output;
        releaseOwnership();
        kernels.arena().release(out);
    }

    /** @return whether the shortcut is a downsampling block rather than the identity */
    public boolean hasDownsample() {
        return shortcut != null;
    }

    /** @return the main path's blocks in forward order */
    public List<NamedBlock> mainBlocks() {
        return main;
    }

    /** @return the downsampling shortcut's block, or empty for the identity */
    public Optional<NamedBlock> shortcutBlock() {
        return Optional.ofNullable(shortcut);
    }

    /** @return the main path's blocks, then the shortcut's */
    public List<NamedBlock> blocks() {
        List<NamedBlock> all = new ArrayList<>(main);
        if (shortcut != null) {
            all.add(shortcut);
        }
        return Collections.unmodifiableList(all);
    }

    /** Adds the activation-sized arrays this unit itself keeps (ReLU outputs, its output) to {@code into}. */
    void collectRetained(List<INDArray> into) {
        into.addAll(reluOutputs);
        if (output != null) {
            into.add(output);
        }
    }
}
