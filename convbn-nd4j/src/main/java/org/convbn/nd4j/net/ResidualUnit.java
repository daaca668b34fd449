package org.convbn.nd4j.net;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

import org.convbn.nd4j.NativeMemory;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A residual unit of ConvBN blocks: the main path runs its blocks with a ReLU between consecutive ones, the
 * shortcut is the identity or a downsampling ConvBN block, and a ReLU follows their sum:
 * {@code out = relu(main(x) + shortcut(x))}. Two 3x3 blocks make ResNet's basic block, 1x1 / 3x3 / 1x1 its
 * bottleneck.
 *
 * <p>Keeps the ReLU outputs (for their backward; they are also the next blocks' inputs, which those blocks keep
 * anyway) and whatever the blocks keep in their mode.
 */
public final class ResidualUnit {
    private final List<NamedBlock> main;
    private final NamedBlock shortcut;
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
    }

    /**
     * @param x not modified, kept by the first blocks until backward
     * @return a new output array, owned by this unit: its backward frees it, so the caller may read it until then
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
        reluOutputs.clear();
        this.alpha = alpha;
        INDArray h = x;
        for (int i = 0; i < main.size(); i++) {
            var block = main.get(i).block();
            h = replay ? block.forwardReplay(h) : block.forward(h);
            if (i < main.size() - 1) {
                Activations.reluInPlace(h);
                reluOutputs.add(h);
            }
        }
        if (shortcut == null) {
            addScaled(h, x, alpha);
        } else {
            var block = shortcut.block();
            INDArray s = replay ? block.forwardReplay(x) : block.forward(x);
            h.addi(s);
            NativeMemory.release(s);
        }
        output = Activations.reluInPlace(h);
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
        reluOutputs.forEach(NativeMemory::release);
        reluOutputs.clear();
        output = null;
    }

    /**
     * Frees what the forward made (ReLU outputs, the output) and the gradients it made on the way.
     *
     * @param g dL/d(out), not modified
     * @param gradients receives every block's parameter gradients (modified)
     * @return dL/dx, a new array
     */
    public INDArray backward(INDArray g, Map<String, INDArray> gradients) {
        INDArray gSum = Activations.reluBackward(output, g);
        INDArray d = gSum;
        for (int i = main.size() - 1; i >= 0; i--) {
            INDArray dBlockInput = main.get(i).backward(d, gradients);
            if (d != gSum) {
                NativeMemory.release(d);
            }
            d = dBlockInput;
            if (i > 0) {
                dBlockInput = Activations.reluBackward(reluOutputs.get(i - 1), d);
                NativeMemory.release(d);
                d = dBlockInput;
            }
        }
        if (shortcut == null) {
            addScaled(d, gSum, alpha); // the identity shortcut's gradient, scaled as its forward was
        } else {
            INDArray dShortcut = shortcut.backward(gSum, gradients);
            d.addi(dShortcut);
            NativeMemory.release(dShortcut);
        }
        // The blocks that kept these as inputs, and the next unit that took the output, are done with them.
        NativeMemory.release(gSum, output);
        reluOutputs.forEach(NativeMemory::release);
        reluOutputs.clear();
        output = null;
        return d;
    }

    /** {@code target += alpha * source}; {@code target} is modified, {@code source} is not. */
    private static void addScaled(INDArray target, INDArray source, double alpha) {
        if (alpha == 1.0) {
            target.addi(source);
            return;
        }
        INDArray scaled = source.mul(alpha);
        target.addi(scaled);
        NativeMemory.release(scaled);
    }

    /** Drops and frees what the last forward kept, its output included (after an inference-only forward). */
    void clearSaved() {
        releaseOwnership();
        NativeMemory.release(output);
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
    public java.util.Optional<NamedBlock> shortcutBlock() {
        return java.util.Optional.ofNullable(shortcut);
    }

    /** @return the main path's blocks, then the shortcut's */
    public List<NamedBlock> blocks() {
        List<NamedBlock> all = new ArrayList<>(main);
        if (shortcut != null) {
            all.add(shortcut);
        }
        return Collections.unmodifiableList(all);
    }

    /** Adds the activation-sized arrays this unit itself keeps (ReLU outputs) to {@code into}. */
    void collectRetained(List<INDArray> into) {
        into.addAll(reluOutputs);
        if (output != null) {
            into.add(output);
        }
    }
}
