package org.convbn.net;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import net.jcip.annotations.NotThreadSafe;
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
 * What MobileNetV2/V3, the EfficientNets and RegNet share: a stem, stages of {@link MBConv} units, maybe a last
 * conv, global average pooling and a classifier head:
 *
 * <pre>
 * stem                conv layer, stride 2                      (features.0; RegNet's stem)
 * stages              {@link MBConv} units                      (features.1 .. S; trunk_output.block1 .. 4)
 * last                1x1 conv layer to the head's width, or none (features.S+1)
 * avgpool             global average pooling
 * head                [linear, hardswish] (MobileNetV3's classifier.0), dropout, linear (the classifier:
 *                     classifier.1, classifier.3, fc)
 * </pre>
 *
 * Dropout and stochastic depth are on while {@link #setStochastic} says so (PyTorch's {@code train()}; default on),
 * drawn from the network's own seeded generator, so two networks built with the same seed draw the same masks
 * whatever their mode. The freezable parts are the stem, the stages and the last conv, under their module names.
 *
 * <p>Memory as {@link ResNet}: one {@link PooledArena} owns every activation, temporary and gradient of a step;
 * feature maps stay in the kernels' preferred layout. Not thread-safe: one thread at a time.
 */
@NotThreadSafe
public abstract sealed class InvertedResidualNetwork implements Network
        permits EfficientNet, MobileNetV2, MobileNetV3, RegNet {
    /** The smallest input side: five stride-2 layers. */
    public static final int MIN_RESOLUTION = 32;

    private final String name;
    private final Kernels kernels;
    private final PooledArena arena;
    private final ConvLayer stem;
    private final List<MBConv> units;
    /** The last conv layer, or null. */
    private final ConvLayer last;
    /** MobileNetV3's linear + hardswish before the dropout, or null. */
    private final Linear hidden;

    private Linear classifier;
    private final DataType dataType;
    private final double dropout;
    private final List<NamedBlock> allBlocks;
    private final List<String> parts;
    /** {@code unitsBefore[k]}: the units inside the first k parts (the stem has none). */
    private final int[] unitsBefore;

    private SplittableRandom rng;
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
    /** The hidden linear layer's output, before and after its hardswish. */
    private INDArray hiddenInput;

    private INDArray hiddenOutput;
    private INDArray dropMask;
    /** The classifier's input when dropout drew a mask (else it reads the features directly). */
    private INDArray dropped;

    private long[] pooledShape;
    private Layout pooledLayout;

    /**
     * @param name the model's name
     * @param parts the module names of the stem, each stage and the last conv (when there is one)
     * @param stageSizes units per stage
     * @param last the last conv layer, or null
     * @param hidden a linear layer followed by hardswish between the pooling and the dropout, or null
     * @param classifier the last linear layer (the one {@link #replaceHead} replaces)
     * @param dropout the dropout probability before the classifier, [0, 1)
     * @param seed the seed of the dropout and stochastic depth draws
     * @throws IllegalArgumentException if the parts, stage sizes and units do not fit together
     */
    InvertedResidualNetwork(
            String name,
            List<String> parts,
            Kernels kernels,
            PooledArena arena,
            ConvLayer stem,
            List<MBConv> units,
            int[] stageSizes,
            ConvLayer last,
            Linear hidden,
            Linear classifier,
            DataType dataType,
            Mode mode,
            double dropout,
            long seed) {
        this.name = name;
        this.kernels = kernels;
        this.arena = arena;
        this.stem = stem;
        this.units = List.copyOf(units);
        this.last = last;
        this.hidden = hidden;
        this.classifier = classifier;
        this.dataType = dataType;
        this.mode = mode;
        this.dropout = dropout;
        seedDraws(seed);
        List<NamedBlock> all = new ArrayList<>();
        layers().forEach(l -> l.block().ifPresent(all::add));
        this.allBlocks = Collections.unmodifiableList(all);
        if (parts.size() != stageSizes.length + 1 + (last != null ? 1 : 0)) {
            throw new IllegalArgumentException("parts: expected the stem, " + stageSizes.length + " stages"
                    + (last != null ? " and the last conv" : "") + ", got " + parts);
        }
        unitsBefore = new int[parts.size() + 1];
        for (int i = 0; i < parts.size(); i++) {
            unitsBefore[i + 1] = unitsBefore[i] + (i >= 1 && i <= stageSizes.length ? stageSizes[i - 1] : 0);
        }
        if (unitsBefore[parts.size()] != units.size()) {
            throw new IllegalArgumentException(
                    "stageSizes: expected sizes summing to " + units.size() + ", got " + Arrays.toString(stageSizes));
        }
        this.parts = List.copyOf(parts);
    }

    /**
     * @return {@code features.0} .. {@code features.<count - 1>}: torchvision's names of the stem, the stages and the
     *         last conv
     */
    static List<String> features(int count) {
        List<String> p = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            p.add("features." + i);
        }
        return p;
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

    /** @return the last conv layer, to the head's width, or empty (RegNet) */
    public Optional<ConvLayer> lastConv() {
        return Optional.ofNullable(last);
    }

    /** @return the last linear layer ({@code classifier.1}, {@code classifier.3}, {@code fc}) */
    @Override
    public Linear classifier() {
        return classifier;
    }

    /** Replaces the last linear layer; see {@link Network#replaceHead}. */
    @Override
    public void replaceHead(int classes, long seed) {
        Linear head = classifier.withOutputs(classes, seed);
        clearSaved();
        classifier = head;
    }

    /** @return every conv layer in module order: the stem, each unit's, the last */
    public List<ConvLayer> layers() {
        List<ConvLayer> all = new ArrayList<>();
        all.add(stem);
        units.forEach(u -> all.addAll(u.layers()));
        if (last != null) {
            all.add(last);
        }
        return all;
    }

    @Override
    public boolean stochastic() {
        return stochastic;
    }

    @Override
    public void setStochastic(boolean on) {
        clearSaved();
        stochastic = on;
    }

    @Override
    public void seedDraws(long seed) {
        rng = new SplittableRandom(seed ^ 0x9E3779B97F4A7C15L);
    }

    @Override
    public DataType dataType() {
        return dataType;
    }

    @Override
    public int classes() {
        return classifier.outputs();
    }

    @Override
    public Mode mode() {
        return mode;
    }

    @Override
    public void setMode(Mode mode) {
        clearSaved();
        List<NamedBlock> frozen = frozenBlocks();
        NamedBlock.setModes(allBlocks, b -> frozen.contains(b) ? Network.frozenMode(mode) : mode);
        this.mode = mode;
    }

    @Override
    public List<NamedBlock> blocks() {
        return allBlocks;
    }

    /** @return the stem, the stages and the last conv, by module name */
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

    /** Whether every conv layer is frozen (the last conv too, where there is one): only the head trains. */
    private boolean allFrozen() {
        return frozenParts == parts.size();
    }

    /** @return the layers of the frozen prefix, in forward order */
    private List<ConvLayer> frozenLayers() {
        List<ConvLayer> out = new ArrayList<>();
        if (stemFrozen()) {
            out.add(stem);
        }
        units.subList(0, frozenUnits()).forEach(u -> out.addAll(u.layers()));
        if (allFrozen() && last != null) {
            out.add(last);
        }
        return out;
    }

    @Override
    public List<NamedBlock> frozenBlocks() {
        return frozenLayers().stream().flatMap(l -> l.block().stream()).toList();
    }

    /**
     * @return every conv layer's tensors that are not a ConvBN block's (proxy-normalised layers, gates) in module
     *         order, then the head's; live arrays
     */
    @Override
    public Map<String, INDArray> layerParameters() {
        Map<String, INDArray> m = new LinkedHashMap<>();
        m.putAll(stem.layerParameters());
        units.forEach(u -> m.putAll(u.layerParameters()));
        if (last != null) {
            m.putAll(last.layerParameters());
        }
        m.putAll(headParameters());
        return m;
    }

    private Map<String, INDArray> headParameters() {
        Map<String, INDArray> m = new LinkedHashMap<>();
        if (hidden != null) {
            m.putAll(hidden.parameters());
        }
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
        if (!allFrozen() && last != null) {
            m.putAll(last.layerParameters());
        }
        m.putAll(headParameters());
        return m;
    }

    @Override
    public Map<String, Cost> cost(int height, int width) {
        Map<String, Cost> head = new LinkedHashMap<>();
        if (hidden != null) {
            head.put(hidden.name(), hidden.cost());
        }
        head.put(classifier.name(), classifier.cost());
        return NetworkCosts.of(stem, units, last, head, height, width);
    }

    @Override
    public INDArray forward(INDArray x) {
        long[] s = x.shape();
        if (x.rank() != 4 || s[1] != 3 || s[2] < MIN_RESOLUTION || s[3] < MIN_RESOLUTION) {
            throw new IllegalArgumentException(
                    "x: expected [N, 3, H, W] with H, W >= " + MIN_RESOLUTION + ", got " + Arrays.toString(s));
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
        INDArray lastOut = h;
        if (last != null) {
            lastOut = last.forward(h);
            if (allFrozen()) {
                last.clearSaved();
            }
        }
        pooledShape = Layout.logicalShape(lastOut);
        pooledLayout = Layout.of(lastOut);
        pooled = kernels.globalAveragePool(lastOut);
        if (allFrozen()) {
            // only the head trains: the last feature maps are not needed any more
            if (lastOut != frozenOutput) {
                arena.release(lastOut);
            }
            arena.release(frozenOutput);
            frozenOutput = null;
        } else if (last == null) {
            // the last unit's output: that unit gives it back in its backward
        } else if (last.backwardReadsOutput()) {
            lastActivation = lastOut;
        } else {
            arena.release(lastOut); // the last layer's backward does not read it
        }
        INDArray features = pooled;
        if (hidden != null) {
            hiddenInput = hidden.forward(pooled);
            hiddenOutput = kernels.hardswish(hiddenInput);
            features = hiddenOutput;
        }
        if (stochastic && dropout > 0) {
            dropMask = KeepMask.draw(rng, dropout, features.dataType(), arena, features.shape());
            dropped = arena.allocate(features.dataType(), features.shape());
            Nd4j.exec(new MulOp(features, dropMask, dropped));
            return classifier.forward(dropped);
        }
        return classifier.forward(features);
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
            dropped = null;
        }
        if (hidden != null) {
            kernels.hardswishBackwardInPlace(hiddenInput, dPooled);
            arena.release(hiddenInput, hiddenOutput);
            hiddenInput = null;
            hiddenOutput = null;
            INDArray d = hidden.backward(dPooled, sink);
            arena.release(dPooled);
            dPooled = d;
        }
        if (allFrozen()) {
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
        INDArray d = g;
        if (last != null) {
            boolean lastIsFirst = stemFrozen() && first == units.size();
            d = last.backward(g, sink, !lastIsFirst);
            arena.release(g, lastActivation);
            lastActivation = null;
        }
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
        if (last != null) {
            last.clearSaved();
        }
        if (hidden != null) {
            hidden.clearSaved();
        }
        classifier.clearSaved();
        arena.release(
                stemActivation, frozenOutput, lastActivation, hiddenInput, hiddenOutput, pooled, dropMask, dropped);
        stemActivation = null;
        frozenOutput = null;
        lastActivation = null;
        hiddenInput = null;
        hiddenOutput = null;
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
        if (last != null) {
            last.collectRetained(own);
        }
        own.addAll(Arrays.asList(
                stemActivation,
                frozenOutput,
                lastActivation,
                pooled,
                hiddenInput,
                hiddenOutput,
                dropMask,
                dropped,
                classifier.savedInput()));
        if (hidden != null) {
            own.add(hidden.savedInput());
        }
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
