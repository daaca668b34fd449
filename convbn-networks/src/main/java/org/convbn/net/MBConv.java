package org.convbn.net;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;

import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.Layout;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * EfficientNet's inverted residual block (torchvision's {@code MBConv}) of ConvBN blocks:
 *
 * <pre>
 * e   = silu(expand(x))            1x1 ConvBN, C -> E; absent when the expansion ratio is 1 (then e = x)
 * d   = silu(depthwise(e))         k x k ConvBN with E groups (or the grouped variant's E / G), stride 1 or 2
 * q   = se(d)                      {@link SqueezeExcitation}
 * y   = project(q)                 1x1 ConvBN, E -> O, no activation
 * out = y * keep_n / (1 - p) + x   when stride 1 and C == O (the residual); keep_n ~ Bernoulli(1 - p) per sample
 *                                  while stochastic depth is on ("row" mode), else out = y + x; out = y otherwise
 * </pre>
 *
 * Names as torchvision's: {@code features.s.i.block.0} (expand), {@code .1} depthwise, {@code .2} SE, {@code .3}
 * project, one fewer index without the expansion.
 *
 * <p>Keeps, until its backward: each SiLU's input and output (the output is also the next block's input), the
 * SE's output (the project block's input), its own output (the next unit's input) and what the blocks keep in their
 * mode; it owns them. All blocks share one {@link Kernels}. Not thread-safe.
 */
public final class MBConv {
    private final NamedBlock expand;
    private final NamedBlock depthwise;
    private final SqueezeExcitation se;
    private final NamedBlock project;
    private final boolean residual;
    private final double dropProbability;
    private final Kernels kernels;
    private final Arena arena;
    // Saved by the forward:
    /** The expansion block's output (SiLU's input) and its SiLU; null without expansion. */
    private INDArray expandedPre;
    private INDArray expanded;
    /** The depthwise block's output (SiLU's input) and its SiLU. */
    private INDArray filteredPre;
    private INDArray filtered;
    private INDArray excited;
    private INDArray keep;
    private INDArray output;

    /**
     * @param expand the 1x1 expansion block, or null (expansion ratio 1)
     * @param depthwise the depthwise (or grouped) block
     * @param se the squeeze-and-excitation layer over the depthwise block's channels
     * @param project the 1x1 projection block
     * @param dropProbability stochastic depth's p for this block, in [0, 1)
     * @throws IllegalArgumentException if the blocks do not chain or share no arena, or p is out of range
     */
    public MBConv(NamedBlock expand, NamedBlock depthwise, SqueezeExcitation se, NamedBlock project,
                  double dropProbability) {
        if (!(dropProbability >= 0 && dropProbability < 1)) {
            throw new IllegalArgumentException("dropProbability: expected a value in [0, 1), got " + dropProbability);
        }
        this.expand = expand;
        this.depthwise = depthwise;
        this.se = se;
        this.project = project;
        this.dropProbability = dropProbability;
        this.kernels = depthwise.block().kernels();
        this.arena = kernels.arena();
        for (NamedBlock b : blocks()) {
            if (b.block().kernels().arena() != arena) {
                throw new IllegalArgumentException("blocks: expected blocks sharing one arena, got " + b.convName()
                        + " on " + b.block().kernels().arena() + " and " + depthwise.convName() + " on " + arena);
            }
        }
        int in = (expand != null ? expand : depthwise).block().config().producer().inChannels();
        int stride = depthwise.block().config().conv().strideH();
        this.residual = stride == 1 && in == project.block().config().channels();
    }

    /** @return whether the unit adds its input to its output (stride 1, same channels) */
    public boolean residual() {
        return residual;
    }

    /** @return stochastic depth's drop probability for this unit */
    public double dropProbability() {
        return dropProbability;
    }

    private Layout layout(NamedBlock b) {
        return kernels.preferredLayout(b.block().config().channels());
    }

    /**
     * @param x not modified, kept (by the first block) until the backward
     * @param rng the draw of stochastic depth, or null to keep every sample's branch (PyTorch's eval())
     * @return a new output, owned by this unit until its backward or {@link #clearSaved}
     */
    public INDArray forward(INDArray x, SplittableRandom rng) {
        clearSaved();
        INDArray h = x;
        if (expand != null) {
            expandedPre = expand.block().forward(x, layout(expand));
            expanded = kernels.silu(expandedPre);
            h = expanded;
        }
        filteredPre = depthwise.block().forward(h, layout(depthwise));
        filtered = kernels.silu(filteredPre);
        excited = se.forward(filtered);
        INDArray y = project.block().forward(excited, layout(project));
        if (residual) {
            if (rng != null && dropProbability > 0) {
                keep = keepMask(rng, y);
                kernels.scaleSamplesInPlace(y, keep);
            }
            kernels.addInPlace(y, x, 1.0);
        }
        output = y;
        return y;
    }

    /** {@code [N]}: 0 for a dropped sample, {@code 1 / (1 - p)} for a kept one (torchvision's StochasticDepth). */
    private INDArray keepMask(SplittableRandom rng, INDArray y) {
        double[] m = new double[(int) y.size(0)];
        for (int i = 0; i < m.length; i++) {
            m[i] = rng.nextDouble() < 1 - dropProbability ? 1 / (1 - dropProbability) : 0;
        }
        INDArray values = Nd4j.createFromArray(m);
        INDArray mask = arena.allocate(y.dataType(), m.length).assign(values);
        Arena.direct().release(values);
        return mask;
    }

    /**
     * Backpropagates the last forward and gives back what it kept, its output included.
     *
     * @param g dL/d(out), not modified
     * @param sink receives every block's and the SE's parameter gradients
     * @return dL/dx, a new array owned by the caller
     */
    public INDArray backward(INDArray g, GradientSink sink) {
        if (output == null) {
            throw new IllegalStateException("backward: expected a pending forward of " + project.convName()
                    + ", got none");
        }
        INDArray gy = g;
        if (keep != null) {
            gy = kernels.copy(g);
            kernels.scaleSamplesInPlace(gy, keep);
        }
        INDArray dq = project.backward(gy, true, sink);
        if (gy != g) {
            arena.release(gy);
        }
        arena.release(excited);
        excited = null;
        INDArray dd = se.backward(dq, sink);
        arena.release(dq);
        kernels.siluBackwardInPlace(filteredPre, dd);
        arena.release(filteredPre, filtered);
        filteredPre = null;
        filtered = null;
        INDArray d = depthwise.backward(dd, true, sink);
        arena.release(dd);
        if (expand != null) {
            kernels.siluBackwardInPlace(expandedPre, d);
            arena.release(expandedPre, expanded);
            expandedPre = null;
            expanded = null;
            INDArray dx = expand.backward(d, true, sink);
            arena.release(d);
            d = dx;
        }
        if (residual) {
            kernels.addInPlace(d, g, 1.0);
        }
        // The output was the next unit's (or the head's) input, whose backward is done.
        arena.release(output, keep);
        output = null;
        keep = null;
        return d;
    }

    /** Drops and gives back what the last forward kept, its output included. */
    public void clearSaved() {
        for (NamedBlock b : blocks()) {
            b.block().clearSaved();
        }
        se.clearSaved();
        arena.release(expandedPre, expanded, filteredPre, filtered, excited, keep, output);
        expandedPre = null;
        expanded = null;
        filteredPre = null;
        filtered = null;
        excited = null;
        keep = null;
        output = null;
    }

    /** @return the expansion block, or empty when the expansion ratio is 1 */
    public Optional<NamedBlock> expandBlock() {
        return Optional.ofNullable(expand);
    }

    /** @return the depthwise (or grouped) block */
    public NamedBlock depthwiseBlock() {
        return depthwise;
    }

    /** @return the squeeze-and-excitation layer */
    public SqueezeExcitation squeezeExcitation() {
        return se;
    }

    /** @return the projection block */
    public NamedBlock projectBlock() {
        return project;
    }

    /** @return the ConvBN blocks in forward order */
    public List<NamedBlock> blocks() {
        List<NamedBlock> all = new ArrayList<>();
        if (expand != null) {
            all.add(expand);
        }
        all.add(depthwise);
        all.add(project);
        return Collections.unmodifiableList(all);
    }

    /** Adds the arrays this unit itself keeps (not its blocks') to {@code into}. */
    void collectRetained(List<INDArray> into) {
        se.collectRetained(into);
        for (INDArray a : new INDArray[] {expandedPre, expanded, filteredPre, filtered, excited, keep, output}) {
            if (a != null) {
                into.add(a);
            }
        }
    }
}
