package org.convbn.net;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The inverted residual block of MobileNetV2/V3 and EfficientNet (torchvision's {@code InvertedResidual} and
 * {@code MBConv}), and RegNet's bottleneck ({@code ResBottleneckBlock}: the same four layers with a projection
 * shortcut and a ReLU after the sum), of {@link ConvLayer}s (ConvBN blocks with their activation, or
 * proxy-normalised convs):
 *
 * <pre>
 * e   = act(expand(x))             1x1 ConvBN, C -> E; absent when the expansion ratio is 1 (then e = x)
 * d   = act(depthwise(e))          k x k ConvBN with E groups (or a grouped variant's E / G), stride 1 or 2
 * q   = se(d)                      {@link SqueezeExcitation}; absent in MobileNetV2 (then q = d)
 * y   = project(q)                 1x1 ConvBN, E -> O, no activation
 * r   = y * keep_n / (1 - p) + x   when stride 1 and C == O (the residual); keep_n ~ Bernoulli(1 - p) per sample
 *                                  while stochastic depth is on ("row" mode), else r = y + x;
 *     = y + shortcut(x)            with a projection shortcut (1x1 ConvBN, C -> O, the stride), RegNet's;
 *     = y                          otherwise
 * out = relu(r) (RegNet) or r
 * </pre>
 *
 * Names are the network's (EfficientNet's {@code features.s.i.block.0} expand, {@code .1} depthwise, {@code .2} SE,
 * {@code .3} project; MobileNetV2's {@code features.i.conv.0}, ...; RegNet's {@code f.a}, {@code f.b}, {@code f.se},
 * {@code f.c}, {@code proj}).
 *
 * <p>Keeps, until its backward: each layer's output (the next layer's input), the SE's output (the projection's
 * input), its own output (the next unit's input) and what the layers keep; it owns them. All layers share one
 * {@link Kernels}. Not thread-safe.
 */
@NotThreadSafe
public final class MBConv {
    private final ConvLayer expand;
    private final ConvLayer depthwise;
    private final SqueezeExcitation se;
    private final ConvLayer project;
    private final ConvLayer shortcut;
    private final boolean reluAfterSum;
    private final boolean residual;
    private final double dropProbability;
    private final Kernels kernels;
    private final Arena arena;
    // Saved by the forward, owned by the unit:
    private INDArray expanded;
    private INDArray filtered;
    /** The gate's output (null without a gate: the projection reads {@link #filtered}). */
    private INDArray excited;

    private INDArray keep;
    private INDArray output;

    /**
     * @param expand the 1x1 expansion layer, or null (expansion ratio 1)
     * @param depthwise the depthwise (or grouped) layer
     * @param se the squeeze-and-excitation layer over the depthwise layer's channels, or null (none)
     * @param project the 1x1 projection layer (no activation)
     * @param kernels the kernels every layer's arrays come from
     * @param dropProbability stochastic depth's p for this unit, in [0, 1)
     * @throws IllegalArgumentException if p is out of range
     */
    public MBConv(
            ConvLayer expand,
            ConvLayer depthwise,
            SqueezeExcitation se,
            ConvLayer project,
            Kernels kernels,
            double dropProbability) {
        this(expand, depthwise, se, project, null, false, kernels, dropProbability);
    }

    /**
     * @param expand the 1x1 expansion layer, or null (expansion ratio 1)
     * @param depthwise the depthwise (or grouped) layer
     * @param se the squeeze-and-excitation layer over the depthwise layer's channels, or null (none)
     * @param project the 1x1 projection layer (no activation)
     * @param shortcut the projection shortcut (1x1, no activation), or null: the identity where the shapes allow
     * @param reluAfterSum whether a ReLU follows the sum (RegNet)
     * @param kernels the kernels every layer's arrays come from
     * @param dropProbability stochastic depth's p for this unit, in [0, 1)
     * @throws IllegalArgumentException if p is out of range
     */
    public MBConv(
            ConvLayer expand,
            ConvLayer depthwise,
            SqueezeExcitation se,
            ConvLayer project,
            ConvLayer shortcut,
            boolean reluAfterSum,
            Kernels kernels,
            double dropProbability) {
        if (!(dropProbability >= 0 && dropProbability < 1)) {
            throw new IllegalArgumentException("dropProbability: expected a value in [0, 1), got " + dropProbability);
        }
        this.expand = expand;
        this.depthwise = depthwise;
        this.se = se;
        this.project = project;
        this.shortcut = shortcut;
        this.reluAfterSum = reluAfterSum;
        this.dropProbability = dropProbability;
        this.kernels = kernels;
        this.arena = kernels.arena();
        int in = (expand != null ? expand : depthwise).conv().inChannels();
        this.residual = shortcut != null
                || depthwise.conv().strideH() == 1 && in == project.conv().outChannels();
    }

    /** @return whether the unit adds its input (or its projection) to its output */
    public boolean residual() {
        return residual;
    }

    /** @return stochastic depth's drop probability for this unit */
    public double dropProbability() {
        return dropProbability;
    }

    /**
     * @param x not modified, kept (by the first layer) until the backward
     * @param rng the draw of stochastic depth, or null to keep every sample's branch (PyTorch's eval())
     * @return a new output, owned by this unit until its backward or {@link #clearSaved}
     */
    public INDArray forward(INDArray x, SplittableRandom rng) {
        clearSaved();
        INDArray h = x;
        if (expand != null) {
            expanded = expand.forward(x);
            h = expanded;
        }
        filtered = depthwise.forward(h);
        if (se != null) {
            excited = se.forward(filtered);
        }
        INDArray y = project.forward(excited != null ? excited : filtered);
        if (residual) {
            if (rng != null && dropProbability > 0) {
                // [N]: 0 for a dropped sample, 1 / (1 - p) for a kept one (torchvision's StochasticDepth, "row")
                keep = KeepMask.draw(rng, dropProbability, kernels.dataType(), arena, y.size(0)); // [N], as parameters
                kernels.scaleSamplesInPlace(y, keep);
            }
            if (shortcut != null) {
                INDArray s = shortcut.forward(x);
                kernels.addInPlace(y, s, 1.0);
                arena.release(s);
            } else {
                kernels.addInPlace(y, x, 1.0);
            }
        }
        if (reluAfterSum) {
            kernels.reluInPlace(y);
        }
        output = y;
        return y;
    }

    /**
     * An inference-only forward (a frozen unit): the same draw and output as {@link #forward}, and nothing kept.
     *
     * @param x not modified
     * @param rng as {@link #forward}'s
     * @return a new output, the caller's
     */
    public INDArray forwardInference(INDArray x, SplittableRandom rng) {
        INDArray out = forward(x, rng);
        output = null; // the caller's now
        clearSaved();
        return out;
    }

    /**
     * Backpropagates the last forward and gives back what it kept, its output included.
     *
     * @param g dL/d(out), not modified
     * @param sink receives every layer's and the SE's parameter gradients
     * @param inputGradient whether dL/dx is needed (not for the first trainable unit after a frozen prefix)
     * @return dL/dx, a new array owned by the caller; null when not asked for
     * @throws IllegalStateException without a pending forward
     */
    public INDArray backward(INDArray g, GradientSink sink, boolean inputGradient) {
        if (output == null) {
            throw new IllegalStateException("backward: expected a pending forward of this unit, got none");
        }
        INDArray gr = reluAfterSum ? kernels.reluBackward(output, g) : g; // dL/d(sum)
        INDArray gy = gr;
        if (keep != null) {
            gy = kernels.copy(gr);
            kernels.scaleSamplesInPlace(gy, keep);
        }
        INDArray dq = project.backward(gy, sink);
        if (gy != gr) {
            arena.release(gy);
        }
        INDArray dd = dq;
        if (se != null) {
            arena.release(excited);
            excited = null;
            dd = se.backward(dq, sink);
            arena.release(dq);
        }
        // A layer's output goes back once nothing reads it: before the layer's backward unless that reads it.
        filtered = releaseUnlessRead(depthwise, filtered);
        INDArray d = depthwise.backward(dd, sink, inputGradient || expand != null);
        arena.release(dd, filtered);
        filtered = null;
        if (expand != null) {
            expanded = releaseUnlessRead(expand, expanded);
            INDArray dx = expand.backward(d, sink, inputGradient);
            arena.release(d, expanded);
            expanded = null;
            d = dx;
        }
        if (shortcut != null) {
            INDArray ds = shortcut.backward(gr, sink, inputGradient);
            if (d != null) {
                kernels.addInPlace(d, ds, 1.0);
                arena.release(ds);
            }
        } else if (residual && d != null) {
            kernels.addInPlace(d, gr, 1.0);
        }
        if (gr != g) {
            arena.release(gr);
        }
        // The output was the next unit's (or the last layer's) input, whose backward is done.
        arena.release(output, keep);
        output = null;
        keep = null;
        return d;
    }

    /** @return null after giving {@code output} back, or {@code output} when the layer's backward reads it */
    private INDArray releaseUnlessRead(ConvLayer layer, INDArray output) {
        if (layer.backwardReadsOutput()) {
            return output;
        }
        arena.release(output);
        return null;
    }

    /** {@link #backward(INDArray, GradientSink, boolean)} with dL/dx. */
    public INDArray backward(INDArray g, GradientSink sink) {
        return backward(g, sink, true);
    }

    /** Drops and gives back what the last forward kept, its output included. */
    public void clearSaved() {
        for (ConvLayer l : layers()) {
            l.clearSaved();
        }
        if (se != null) {
            se.clearSaved();
        }
        arena.release(expanded, filtered, excited, keep, output);
        expanded = null;
        filtered = null;
        excited = null;
        keep = null;
        output = null;
    }

    /** @return the expansion layer, or empty when the expansion ratio is 1 */
    public Optional<ConvLayer> expandLayer() {
        return Optional.ofNullable(expand);
    }

    /** @return the depthwise (or grouped) layer */
    public ConvLayer depthwiseLayer() {
        return depthwise;
    }

    /** @return the squeeze-and-excitation layer, or empty (MobileNetV2) */
    public Optional<SqueezeExcitation> squeezeExcitation() {
        return Optional.ofNullable(se);
    }

    /** @return the projection layer */
    public ConvLayer projectLayer() {
        return project;
    }

    /** @return the projection shortcut, or empty (the identity, or no residual) */
    public Optional<ConvLayer> shortcutLayer() {
        return Optional.ofNullable(shortcut);
    }

    /** @return the conv layers in module order: the shortcut (RegNet's {@code proj} comes first), then the path */
    public List<ConvLayer> layers() {
        List<ConvLayer> all = new ArrayList<>();
        if (shortcut != null) {
            all.add(shortcut);
        }
        if (expand != null) {
            all.add(expand);
        }
        all.add(depthwise);
        all.add(project);
        return Collections.unmodifiableList(all);
    }

    /** @return the ConvBN blocks in forward order (none for proxy-normalised layers) */
    public List<NamedBlock> blocks() {
        return layers().stream().flatMap(l -> l.block().stream()).toList();
    }

    /**
     * @return the trainable tensors that are not a ConvBN block's (the gate's, proxy-normalised layers'), by network
     *         name, in module order; live
     */
    public Map<String, INDArray> layerParameters() {
        Map<String, INDArray> m = new LinkedHashMap<>();
        List<ConvLayer> layers = layers();
        for (int i = 0; i < layers.size(); i++) {
            if (layers.get(i) == project && se != null) {
                m.putAll(se.parameters());
            }
            m.putAll(layers.get(i).layerParameters());
        }
        return m;
    }

    /** Adds the arrays this unit and its layers keep (not their blocks' saved tensors) to {@code into}. */
    void collectRetained(List<INDArray> into) {
        layers().forEach(l -> l.collectRetained(into));
        if (se != null) {
            se.collectRetained(into);
        }
        for (INDArray a : new INDArray[] {expanded, filtered, excited, keep, output}) {
            if (a != null) {
                into.add(a);
            }
        }
    }
}
