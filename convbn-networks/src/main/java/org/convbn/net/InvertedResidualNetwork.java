package org.convbn.net;

import net.jcip.annotations.NotThreadSafe;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import org.convbn.core.Cost;
import org.convbn.core.Mode;
import org.convbn.core.RetainedBytes;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.Layout;
import org.convbn.nd4j.kernel.PooledArena;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.MulOp;
import org.nd4j.linalg.factory.Nd4j;

/**
 * What MobileNetV2 and the EfficientNets share (torchvision's {@code features} / {@code avgpool} /
 * {@code classifier} layout):
 *
 * <pre>
 * features.0          stem conv layer, stride 2
 * features.1 .. S     stages of {@link MBConv} units
 * features.S+1        1x1 conv layer to the classifier's width
 * avgpool             global average pooling
 * classifier          dropout ({@code classifier.0}), linear ({@code classifier.1})
 * </pre>
 *
 * Dropout and stochastic depth are on while {@link #setStochastic} says so (PyTorch's {@code train()}; default on),
 * drawn from the network's own seeded generator, so two networks built with the same seed draw the same masks
 * whatever their mode. The freezable parts are the {@code features.i} modules.
 *
 * <p>Memory as {@link ResNet}: one {@link PooledArena} owns every activation, temporary and gradient of a step;
 * feature maps stay in the kernels' preferred layout. Not thread-safe: one thread at a time.
 */
@NotThreadSafe
public abstract sealed class InvertedResidualNetwork implements Network permits EfficientNet, MobileNetV2 {
    /** The smallest input side: five stride-2 layers. */
    public static final int MIN_RESOLUTION = 32;

    private final String name;
    private final Kernels kernels;
    private final PooledArena arena;
    private final ConvLayer stem;
    private final List<MBConv> units;
    private final ConvLayer last;
    private Linear classifier;
    private final DataType dataType;
    private final double dropout;
    private final List<NamedBlock> allBlocks;
    private final List<String> parts;
    /** {@code unitsBefore[k]}: the units inside the first k parts (the stem has none). */
    private final int[] unitsBefore;
    private final SplittableRandom rng;
    private Mode mode;
    private boolean stochastic = true;
    private int frozenParts;
    // Between forward and backward, owned by the network:
    private boolean pending;
    /** The stem's output (the first unit's input) while the stem trains. */
    private INDArray stemActivation;
    /** The last frozen layer's output (the first trainable layer's input) while a prefix is frozen. */
    private INDArray frozenOutput;
    /** The last conv layer's output, while its backward reads it (an in-place activation such as ReLU6). */
    private INDArray lastActivation;
    private INDArray pooled;
    private INDArray dropMask;
    private INDArray dropped;
    private long[] pooledShape;
    private Layout pooledLayout;

    /**
     * @param name the model's name
     * @param stageSizes units per {@code features.i} module between the stem and the last conv layer
     * @param dropout the classifier's dropout probability, [0, 1)
     * @param seed the seed of the dropout and stochastic depth draws
     */
    InvertedResidualNetwork(String name, Kernels kernels, PooledArena arena, ConvLayer stem, List<MBConv> units,
                            int[] stageSizes, ConvLayer last, Linear classifier, DataType dataType, Mode mode,
                            double dropout, long seed) {
        this.name = name;
        this.kernels = kernels;
        this.arena = arena;
        this.stem = stem;
        this.units = List.copyOf(units);
        this.last = last;
        this.classifier = classifier;
        this.dataType = dataType;
        this.mode = mode;
        this.dropout = dropout;
        this.rng = new SplittableRandom(seed ^ 0x9E3779B97F4A7C15L);
        List<NamedBlock> all = new ArrayList<>();
        stem.block().ifPresent(all::add);
        units.forEach(u -> all.addAll(u.blocks()));
        last.block().ifPresent(all::add);
        this.allBlocks = Collections.unmodifiableList(all);
        List<String> p = new ArrayList<>();
        unitsBefore = new int[stageSizes.length + 3];
        for (int i = 0; i <= stageSizes.length + 1; i++) {
            p.add("features." + i);
            unitsBefore[i + 1] = unitsBefore[i] + (i >= 1 && i <= stageSizes.length ? stageSizes[i - 1] : 0);
        }
        if (unitsBefore[unitsBefore.length - 1] != units.size()) {
            throw new IllegalArgumentException("stageSizes: expected sizes summing to " + units.size() + ", got "
                    + Arrays.toString(stageSizes));
        }
        this.parts = Collections.unmodifiableList(p);
    }

    @Override
    public String name() {
        return name;
    }

    /** @return the stem layer ({@code features.0}) */
    public ConvLayer stem() {
        return stem;
    }

    /** @return the inverted residual units in forward order */
    public List<MBConv> units() {
        return units;
    }

    /** @return the last conv layer, to the classifier's width */
    public ConvLayer lastConv() {
        return last;
    }

    /** @return {@code classifier.1} */
    @Override
    public Linear classifier() {
        return classifier;
    }

    /** Replaces {@code classifier.1}; see {@link Network#replaceHead}. */
    @Override
    public void replaceHead(int classes, long seed) {
        if (classes < 1) {
            throw new IllegalArgumentException("classes: expected >= 1, got " + classes);
        }
        clearSaved();
        int in = (int) classifier.parameters().get("classifier.1.weight").size(1);
        classifier = new Linear("classifier.1", in, classes, dataType, seed, arena);
    }

    /** @return every conv layer in forward order: the stem, each unit's, the last */
    public List<ConvLayer> layers() {
        List<ConvLayer> all = new ArrayList<>();
        all.add(stem);
        units.forEach(u -> all.addAll(u.layers()));
        all.add(last);
        return all;
    }

    /** @return whether dropout and stochastic depth are drawn in forwards */
    public boolean stochastic() {
        return stochastic;
    }

    /**
     * Turns dropout and stochastic depth on (PyTorch's {@code train()}) or off (its {@code eval()}, e.g. for an
     * accuracy pass or a gradient check); independent of the BN mode. Drops a pending forward.
     */
    public void setStochastic(boolean on) {
        clearSaved();
        stochastic = on;
    }

    @Override
    public DataType dataType() {
        return dataType;
    }

    @Override
    public int classes() {
        return (int) classifier.parameters().get("classifier.1.weight").size(0);
    }

    @Override
    public Mode mode() {
        return mode;
    }

    @Override
    public void setMode(Mode mode) {
        clearSaved();
        List<NamedBlock> frozen = frozenBlocks();
        allBlocks.forEach(b -> b.block().setMode(frozen.contains(b) ? frozenMode(mode) : mode));
        this.mode = mode;
    }

    /** What a frozen block runs in when the network is in {@code networkMode}: the fold, recomputed or kept. */
    private static Mode frozenMode(Mode networkMode) {
        return networkMode == Mode.DEPLOY ? Mode.DEPLOY : Mode.TUNE;
    }

    @Override
    public List<NamedBlock> blocks() {
        return allBlocks;
    }

    /** @return {@code features.0} .. {@code features.S+1} */
    @Override
    public List<String> freezableParts() {
        return parts;
    }

    @Override
    public int frozenParts() {
        return frozenParts;
    }

    @Override
    public void setFrozenParts(int n) {
        if (n < 0 || n > parts.size()) {
            throw new IllegalArgumentException("frozen parts: expected 0.." + parts.size() + " (of " + parts.get(0)
                    + " .. " + parts.get(parts.size() - 1) + "), got " + n);
        }
        frozenParts = n;
        setMode(mode);
    }

    private boolean stemFrozen() {
        return frozenParts >= 1;
    }

    private int frozenUnits() {
        return unitsBefore[frozenParts];
    }

    private boolean lastFrozen() {
        return frozenParts == parts.size();
    }

    /** @return the layers of the frozen prefix, in forward order */
    private List<ConvLayer> frozenLayers() {
        List<ConvLayer> out = new ArrayList<>();
        if (stemFrozen()) {
            out.add(stem);
        }
        units.subList(0, frozenUnits()).forEach(u -> out.addAll(u.layers()));
        if (lastFrozen()) {
            out.add(last);
        }
        return out;
    }

    @Override
    public List<NamedBlock> frozenBlocks() {
        return frozenLayers().stream().flatMap(l -> l.block().stream()).toList();
    }

    /**
     * @return every conv layer's tensors that are not a ConvBN block's (proxy-normalised layers, squeeze-and-excitation)
     *         in module order, then the classifier's; live arrays
     */
    @Override
    public Map<String, INDArray> layerParameters() {
        Map<String, INDArray> m = new LinkedHashMap<>();
        m.putAll(stem.layerParameters());
        units.forEach(u -> m.putAll(u.layerParameters()));
        m.putAll(last.layerParameters());
        m.putAll(classifier.parameters());
        return m;
    }

    /** @return the tensors outside the frozen prefix: blocks in the current mode, then the other layers'; live */
    @Override
    public Map<String, INDArray> parameters() {
        Map<String, INDArray> m = new LinkedHashMap<>();
        List<NamedBlock> frozen = frozenBlocks();
        allBlocks.stream().filter(b -> !frozen.contains(b)).forEach(b -> m.putAll(b.parameters()));
        if (!stemFrozen()) {
            m.putAll(stem.layerParameters());
        }
        units.subList(frozenUnits(), units.size()).forEach(u -> m.putAll(u.layerParameters()));
        if (!lastFrozen()) {
            m.putAll(last.layerParameters());
        }
        m.putAll(classifier.parameters());
        return m;
    }

    @Override
    public Map<String, Cost> cost(int height, int width) {
        return NetworkCosts.of(stem, units, last, Map.of("classifier.1", classifier.cost()), height, width);
    }

    @Override
    public INDArray forward(INDArray x) {
        long[] s = x.shape();
        if (x.rank() != 4 || s[1] != 3 || s[2] < MIN_RESOLUTION || s[3] < MIN_RESOLUTION) {
            throw new IllegalArgumentException("x: expected [N, 3, H, W] with H, W >= " + MIN_RESOLUTION + ", got "
                    + Arrays.toString(s));
        }
        clearSaved();
        pending = true;
        SplittableRandom draw = stochastic ? rng : null;
        INDArray h = stem.forward(x);
        if (stemFrozen()) {
            stem.clearSaved(); // inference only: nothing is kept for a backward that never reaches it
            frozenOutput = h;
        } else {
            stemActivation = h;
        }
        for (int i = 0; i < units.size(); i++) {
            if (i < frozenUnits()) {
                INDArray out = units.get(i).forwardInference(h, draw);
                arena.release(frozenOutput);
                frozenOutput = out;
                h = out;
            } else {
                h = units.get(i).forward(h, draw);
            }
        }
        INDArray lastOut = last.forward(h);
        if (lastFrozen()) {
            last.clearSaved();
            arena.release(frozenOutput); // only the classifier trains: the last input is not needed any more
            frozenOutput = null;
        }
        pooledShape = Layout.logicalShape(lastOut);
        pooledLayout = Layout.of(lastOut);
        pooled = kernels.globalAveragePool(lastOut);
        if (last.backwardReadsOutput() && !lastFrozen()) {
            lastActivation = lastOut;
        } else {
            arena.release(lastOut); // the last layer's backward does not read it
        }
        dropped = pooled;
        if (stochastic && dropout > 0) {
            dropMask = KeepMask.draw(rng, dropout, pooled.dataType(), arena, pooled.shape());
            dropped = arena.allocate(pooled.dataType(), pooled.shape());
            Nd4j.exec(new MulOp(pooled, dropMask, dropped));
        }
        return classifier.forward(dropped);
    }

    @Override
    public void backward(INDArray gradLogits, GradientSink sink) {
        if (!pending) {
            throw new IllegalStateException("backward: expected a pending forward, got none (call forward first; "
                    + "each forward allows one backward)");
        }
        INDArray dPooled = classifier.backward(gradLogits, sink);
        if (dropMask != null) {
            Nd4j.exec(new MulOp(dPooled, dropMask, dPooled));
            arena.release(dropMask, dropped);
            dropMask = null;
        }
        dropped = null;
        if (lastFrozen()) {
            arena.release(dPooled, pooled);
            pooled = null;
            pending = false;
            return;
        }
        INDArray g = kernels.globalAveragePoolBackward(dPooled, pooledShape, pooledLayout);
        arena.release(dPooled, pooled);
        pooled = null;
        int first = frozenUnits();
        // dL/d(input) of the first trainable layer is not needed: the network's input, or a frozen layer's output
        boolean lastIsFirst = stemFrozen() && first == units.size();
        INDArray d = last.backward(g, sink, !lastIsFirst);
        arena.release(g, lastActivation);
        lastActivation = null;
        for (int i = units.size() - 1; i >= first; i--) {
            boolean firstTrainable = stemFrozen() && i == first;
            INDArray next = units.get(i).backward(d, sink, !firstTrainable);
            arena.release(d);
            d = next;
        }
        if (stemFrozen()) {
            arena.release(d, frozenOutput); // d is null: the first trainable layer made none
            frozenOutput = null;
            pending = false;
            return;
        }
        // the first unit's input, its backward done; the stem's backward may read it
        if (!stem.backwardReadsOutput()) {
            arena.release(stemActivation);
            stemActivation = null;
        }
        stem.backward(d, sink, false);
        arena.release(d, stemActivation);
        stemActivation = null;
        pending = false;
    }

    @Override
    public void clearSaved() {
        units.forEach(MBConv::clearSaved);
        stem.clearSaved();
        last.clearSaved();
        classifier.clearSaved();
        arena.release(stemActivation, frozenOutput, lastActivation);
        if (dropped != pooled) {
            arena.release(dropped);
        }
        arena.release(pooled, dropMask);
        stemActivation = null;
        frozenOutput = null;
        lastActivation = null;
        pooled = null;
        dropped = null;
        dropMask = null;
        pending = false;
    }

    @Override
    public RetainedBytes retainedBytes() {
        List<INDArray> own = new ArrayList<>();
        stem.collectRetained(own);
        units.forEach(u -> u.collectRetained(own));
        last.collectRetained(own);
        own.addAll(Arrays.asList(stemActivation, frozenOutput, lastActivation, pooled, dropMask, dropped, classifier.savedInput()));
        return Network.retained(allBlocks, own);
    }

    @Override
    public Kernels kernels() {
        return kernels;
    }

    @Override
    public PooledArena arena() {
        return arena;
    }

    /** Frees the network's kernels (their cached primitives) and arena: nothing it handed out may be used after. */
    @Override
    public void close() {
        clearSaved();
        kernels.close();
        arena.close();
    }
}
