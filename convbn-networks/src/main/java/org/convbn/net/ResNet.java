package org.convbn.net;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.Cost;
import org.convbn.core.Mode;
import org.convbn.core.RetainedBytes;
import org.convbn.core.TuneFold;
import org.convbn.nd4j.ConvBNBlock;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.Layout;
import org.convbn.nd4j.kernel.PooledArena;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A ResNet (torchvision's v1.5 layout and module names) built from ConvBN blocks: stem {@code conv1}/{@code bn1}
 * 7x7/2 + ReLU + 3x3/2 max pool, four stages {@code layer1..layer4} of basic blocks (ResNet-18/34) or bottlenecks
 * with the stride on the 3x3 (ResNet-50/101/152, ResNeXt-50 32x4d with its 3x3 convs in 32 groups, Wide
 * ResNet-50-2), {@code downsample.0}/{@code downsample.1} where the shape changes, global average pooling and a linear
 * head {@code fc}, built by {@link #builder} for a {@link Variant}; a training step comes from
 * {@code org.convbn.train.TrainingStep}. Convs have no bias, BN eps 1e-5 and momentum 0.1.
 *
 * <p>Input {@code [N, 3, H, W]} (H, W at least 32), logits {@code [N, classes]}. The whole network switches mode
 * with {@link #setMode}.
 *
 * <p>Memory: the network owns one {@link PooledArena}, from which every block, activation, temporary and gradient
 * of a step comes and to which each goes back as soon as its last reader is done; from the second step on, a step
 * allocates no native memory. {@link #close()} frees it. All blocks compute on one {@link Kernels} set, the fastest
 * available for the data type ({@link Kernels#create}), and feature maps stay in its preferred layout between
 * layers. Not thread-safe: one thread at a time.
 */
@NotThreadSafe
public final class ResNet implements Network {
    /**
     * torchvision's ResNet family: basic blocks or bottlenecks, units per stage, and for a bottleneck the 3x3 conv's
     * groups and width per group (its width is {@code planes * widthPerGroup / 64 * groups}, torchvision's formula).
     */
    public enum Variant {
        /** Basic blocks [2, 2, 2, 2]: 20 ConvBN blocks, 11,689,512 parameters at 1000 classes. */
        RESNET18("resnet18", false, new int[] {2, 2, 2, 2}, 1, 64),
        /** Basic blocks [3, 4, 6, 3]: 36 ConvBN blocks, 21,797,672 parameters. */
        RESNET34("resnet34", false, new int[] {3, 4, 6, 3}, 1, 64),
        /** Bottlenecks [3, 4, 6, 3]: 53 ConvBN blocks, 25,557,032 parameters. */
        RESNET50("resnet50", true, new int[] {3, 4, 6, 3}, 1, 64),
        /** Bottlenecks [3, 4, 23, 3]: 104 ConvBN blocks, 44,549,160 parameters. */
        RESNET101("resnet101", true, new int[] {3, 4, 23, 3}, 1, 64),
        /** Bottlenecks [3, 8, 36, 3]: 155 ConvBN blocks, 60,192,808 parameters. */
        RESNET152("resnet152", true, new int[] {3, 8, 36, 3}, 1, 64),
        /** ResNeXt-50 32x4d: ResNet-50's units, 3x3 convs in 32 groups of 4 per 64 planes; 25,028,904 parameters. */
        RESNEXT50_32X4D("resnext50_32x4d", true, new int[] {3, 4, 6, 3}, 32, 4),
        /** Wide ResNet-50-2: ResNet-50's units, bottlenecks twice as wide; 68,883,240 parameters. */
        WIDE_RESNET50_2("wide_resnet50_2", true, new int[] {3, 4, 6, 3}, 1, 128);

        private final String torchvisionName;
        private final boolean bottleneck;
        private final int[] units;
        private final int groups;
        private final int widthPerGroup;

        Variant(String torchvisionName, boolean bottleneck, int[] units, int groups, int widthPerGroup) {
            this.torchvisionName = torchvisionName;
            this.bottleneck = bottleneck;
            this.units = units;
            this.groups = groups;
            this.widthPerGroup = widthPerGroup;
        }

        /** @return torchvision's builder name, e.g. {@code "resnext50_32x4d"} */
        public String torchvisionName() {
            return torchvisionName;
        }

        /** @return whether the units are bottlenecks (1x1, 3x3, 1x1; expansion 4) rather than basic blocks */
        public boolean bottleneck() {
            return bottleneck;
        }

        /** @return the number of units in each of the four stages */
        public int[] units() {
            return units.clone();
        }

        /** The width of a stage's inner convs for {@code planes} = 64, 128, 256, 512 (torchvision's formula). */
        int width(int planes) {
            return bottleneck ? planes * widthPerGroup / 64 * groups : planes;
        }
    }

    /** torchvision's {@code planes} of the four stages (a bottleneck's output is 4 planes). */
    private static final int[] PLANES = {64, 128, 256, 512};

    /** Max pooling after the stem: 3x3, stride 2, padding 1. */
    private static final int POOL_KERNEL = 3;

    private static final int POOL_STRIDE = 2;
    private static final int POOL_PAD = 1;

    private final String name;
    private final Variant variant;
    private final Kernels kernels;
    private final PooledArena arena;
    private final NamedBlock stem;
    private final List<Stage> stages;
    private final DataType dataType;
    private Linear fc;
    private final List<NamedBlock> allBlocks;
    /** The mode the network was last set to; frozen blocks run in {@link Network#frozenMode(Mode)} of it. */
    private Mode mode;
    /** 0: everything trains; 1: the stem is frozen; 1 + k: the stem and stages 1..k are frozen. */
    private int frozenParts;
    /**
     * The last frozen layer's output: the first trainable block's input, owned by the network until the backward
     * (or {@link #clearSaved()}); null when nothing is frozen or no forward is pending.
     */
    private INDArray frozenOutput;
    /** Whether a forward awaits its backward. */
    private boolean pending;
    // Between forward and backward, owned by the network:
    /** The stem's ReLU output, while the max pool's backward needs it. */
    private INDArray stemRelu;

    private Kernels.Pooled stemPooled;
    private INDArray pooled;
    private long[] pooledShape;
    private Layout pooledLayout;

    private ResNet(
            String name,
            Variant variant,
            Kernels kernels,
            PooledArena arena,
            NamedBlock stem,
            List<Stage> stages,
            Linear fc,
            DataType dataType,
            Mode mode) {
        this.name = name;
        this.variant = variant;
        this.dataType = dataType;
        this.mode = mode;
        this.kernels = kernels;
        this.arena = arena;
        this.stem = stem;
        this.stages = List.copyOf(stages);
        this.fc = fc;
        List<NamedBlock> all = new ArrayList<>();
        all.add(stem);
        stages.forEach(st -> all.addAll(st.blocks()));
        this.allBlocks = Collections.unmodifiableList(all);
    }

    /**
     * @param variant the architecture
     * @return a builder of a network with PyTorch's default initialisation of every block (gamma 1, beta 0, running
     *         mean 0, var 1): 1000 classes, FLOAT, seed 0, EVAL, {@link TuneFold#RECOMPUTE}, plain stages, dense
     *         convs unless set otherwise
     */
    public static Builder builder(Variant variant) {
        return new Builder(variant);
    }

    /**
     * What a network is made of ({@link NetworkBuilder}'s settings; the group size applies to every 3x3 conv after the
     * stem, EfficientNet-style grouped convs with a fixed group width); every combination builds. Validated in
     * {@link #build()}.
     */
    @NotThreadSafe
    public static final class Builder extends NetworkBuilder<Builder> {
        private final Variant variant;
        private boolean reversible;
        private double minBeta;

        private Builder(Variant variant) {
            this.variant = Objects.requireNonNull(variant, "variant");
        }

        /**
         * Every stage a {@link ReversibleStage} (coupling alpha 1, beta 0 until {@link #setCoupling}: the pretrained
         * network).
         *
         * @param minBeta beta below which the stages keep activations instead of reconstructing them, &gt;= 0
         */
        public Builder reversible(double minBeta) {
            this.reversible = true;
            this.minBeta = minBeta;
            return this;
        }

        /**
         * @return the network, the caller's to close
         * @throws IllegalArgumentException naming the setting that is out of range (a group size that does not
         *                                  divide some 3x3 conv's input channels is named by that conv)
         */
        public ResNet build() {
            validate();
            if (reversible && !(minBeta >= 0)) {
                throw new IllegalArgumentException("minBeta: expected a value >= 0, got " + minBeta);
            }
            if (reversible && precision.isBf16()) {
                // a stage rebuilds x_i = (y_i - F(y_{i+1})) / beta from its streams: in bfloat16 each rebuild would
                // lose 2^-9 of the streams' magnitude, which the next rebuild divides by beta again
                throw new IllegalArgumentException("precision: reversible stages rebuild activations from their "
                        + "streams, which bfloat16 cannot hold exactly enough; expected FULL, got " + precision);
            }
            return create(this);
        }
    }

    private static ResNet create(Builder b) {
        return ConvLayers.owning(b, (arena, kernels) -> create(b, arena, kernels));
    }

    private static ResNet create(Builder b, PooledArena arena, Kernels kernels) {
        Variant variant = b.variant;
        ConvLayers.Factory make = new ConvLayers.Factory(b, kernels);
        NamedBlock stem = make.block("conv1", "bn1", ConvLayers.conv(3, 64, 7, 2, 0));
        List<Stage> stages = new ArrayList<>();
        int in = 64;
        for (int stage = 0; stage < 4; stage++) {
            List<ResidualUnit> units = new ArrayList<>();
            int planes = PLANES[stage];
            int width = variant.width(planes);
            int out = variant.bottleneck ? 4 * planes : planes;
            // the 3x3 convs' input channels per group: the builder's setting, else the variant's groups, else dense
            int group3x3 = b.groupSize > 0 ? b.groupSize : variant.groups > 1 ? width / variant.groups : 0;
            for (int u = 0; u < variant.units[stage]; u++) {
                int stride = (u == 0 && stage > 0) ? 2 : 1;
                String p = "layer" + (stage + 1) + "." + u + ".";
                List<NamedBlock> main = new ArrayList<>();
                if (variant.bottleneck) {
                    main.add(make.block(p + "conv1", p + "bn1", ConvLayers.conv(in, width, 1, 1, 0)));
                    main.add(make.block(p + "conv2", p + "bn2", ConvLayers.conv(width, width, 3, stride, group3x3)));
                    main.add(make.block(p + "conv3", p + "bn3", ConvLayers.conv(width, out, 1, 1, 0)));
                } else {
                    main.add(make.block(p + "conv1", p + "bn1", ConvLayers.conv(in, width, 3, stride, group3x3)));
                    main.add(make.block(p + "conv2", p + "bn2", ConvLayers.conv(width, width, 3, 1, group3x3)));
                }
                NamedBlock shortcut = (stride != 1 || in != out)
                        ? make.block(p + "downsample.0", p + "downsample.1", ConvLayers.conv(in, out, 1, stride, 0))
                        : null;
                units.add(new ResidualUnit(main, shortcut));
                in = out;
            }
            stages.add(
                    b.reversible
                            ? new ReversibleStage(units.get(0), units.subList(1, units.size()), b.minBeta)
                            : new PlainStage(units));
        }
        Linear fc = new Linear("fc", in, b.classes, b.dataType, make.nextSeed(), arena);
        String name = variant.torchvisionName
                + (b.groupSize > 0 ? "_g" + b.groupSize : "")
                + (b.reversible ? "_reversible" : "");
        return new ResNet(name, variant, kernels, arena, stem, stages, fc, b.dataType, b.mode);
    }

    /** @return the stem block (for {@link NetworkCosts}) */
    NamedBlock stem() {
        return stem;
    }

    /** @return the stages in forward order (for {@link NetworkCosts}) */
    List<Stage> stages() {
        return stages;
    }

    /** @return the architecture */
    public Variant variant() {
        return variant;
    }

    /** @return the data type of every parameter and activation */
    @Override
    public DataType dataType() {
        return dataType;
    }

    /** @return the mode the network was last set to (frozen blocks run as {@link #setFrozenParts} says) */
    @Override
    public Mode mode() {
        return mode;
    }

    /** @return the number of classes the head predicts */
    @Override
    public int classes() {
        return fc.outputs();
    }

    /** @return e.g. {@code "resnet50"}, {@code "resnet50_g16"} (grouped 3x3 convs), {@code "resnet18_reversible"} */
    @Override
    public String name() {
        return name;
    }

    /** Replaces {@code fc}; see {@link Network#replaceHead}. */
    @Override
    public void replaceHead(int classes, long seed) {
        Linear head = fc.withOutputs(classes, seed);
        clearSaved();
        fc = head;
    }

    /** @return {@code conv1} (the stem with its BN and max pool), {@code layer1} .. {@code layer4} */
    @Override
    public List<String> freezableParts() {
        List<String> parts = new ArrayList<>();
        parts.add("conv1");
        for (int i = 1; i <= stages.size(); i++) {
            parts.add("layer" + i);
        }
        return Collections.unmodifiableList(parts);
    }

    /** @return the number of frozen leading parts: 0 none, 1 the stem, 1 + k the stem and stages 1..k */
    @Override
    public int frozenParts() {
        return frozenParts;
    }

    /**
     * Freezes the stem ({@code n >= 1}) and then {@code layer1 .. layer(n-1)}; see {@link Network#setFrozenParts}.
     *
     * @param n 0..5: 0 trains everything, 5 only {@code fc}
     * @throws IllegalArgumentException if {@code n} is outside 0..5
     * @throws IllegalStateException on a network with reversible stages (they reconstruct activations from the
     *                               next stage's, which a frozen prefix does not keep)
     */
    @Override
    public void setFrozenParts(int n) {
        List<String> parts = freezableParts();
        if (n < 0 || n > parts.size()) {
            throw new IllegalArgumentException(
                    "frozen parts: expected 0.." + parts.size() + " (of " + parts + "), got " + n);
        }
        if (n > 0 && !reversibleStages().isEmpty()) {
            throw new IllegalStateException("frozen parts: expected a network of plain stages, got reversible ones");
        }
        frozenParts = n;
        setMode(mode);
    }

    /** @return the blocks of the frozen prefix, in forward order */
    @Override
    public List<NamedBlock> frozenBlocks() {
        List<NamedBlock> out = new ArrayList<>();
        if (frozenParts >= 1) {
            out.add(stem);
        }
        for (int i = 0; i < frozenParts - 1; i++) {
            out.addAll(stages.get(i).blocks());
        }
        return Collections.unmodifiableList(out);
    }

    /** @return every ConvBN block in forward order (stem, then each unit's main path and shortcut) */
    @Override
    public List<NamedBlock> blocks() {
        return allBlocks;
    }

    /** @return {@code fc} */
    @Override
    public Linear classifier() {
        return fc;
    }

    /** @return the cost of {@code conv1}, every unit's main path and shortcut, then {@code fc} */
    @Override
    public Map<String, Cost> cost(int height, int width) {
        return NetworkCosts.of(this, height, width);
    }

    /** @return the head's {@code fc.weight} and {@code fc.bias}; live arrays */
    @Override
    public Map<String, INDArray> layerParameters() {
        return fc.parameters();
    }

    /** @return the reversible stages (empty for a plain network) */
    public List<ReversibleStage> reversibleStages() {
        List<ReversibleStage> r = new ArrayList<>();
        for (Stage st : stages) {
            if (st instanceof ReversibleStage rs) {
                r.add(rs);
            }
        }
        return r;
    }

    /** Sets every reversible stage's coupling for the next forwards (see {@link Coupling.Schedule}). */
    public void setCoupling(Coupling coupling) {
        reversibleStages().forEach(rs -> rs.setCoupling(coupling));
    }

    /** @return the kernels every block and layer computes on */
    @Override
    public Kernels kernels() {
        return kernels;
    }

    /** @return the arena that owns the network's native memory during steps */
    @Override
    public PooledArena arena() {
        return arena;
    }

    /**
     * Drops and gives back what the last forward kept for a backward, for an inference-only forward. The logits the
     * forward returned stay the caller's.
     */
    @Override
    public void clearSaved() {
        stages.forEach(Stage::clearSaved);
        stem.block().clearSaved();
        fc.clearSaved();
        if (stemPooled != null) {
            arena.release(stemPooled.output(), stemPooled.workspace());
        }
        arena.release(stemRelu, pooled, frozenOutput);
        stemRelu = null;
        stemPooled = null;
        pooled = null;
        frozenOutput = null;
        pending = false;
    }

    /**
     * Switches every trainable block (see {@link ConvBNBlock#setMode}), and the frozen ones to what
     * {@link #setFrozenParts} says, all or none ({@link NamedBlock#setModes}); drops and gives back a pending
     * forward.
     */
    @Override
    public void setMode(Mode mode) {
        clearSaved();
        List<NamedBlock> frozen = frozenBlocks();
        NamedBlock.setModes(allBlocks, b -> frozen.contains(b) ? Network.frozenMode(mode) : mode);
        this.mode = mode;
    }

    /**
     * @param x {@code [N, 3, H, W]}, not modified, kept until backward
     * @return new logits {@code [N, classes]}, the caller's (give them back with {@code arena().release})
     */
    @Override
    public INDArray forward(INDArray x) {
        clearSaved();
        pending = true;
        stemRelu = stem.forward(x, kernels.preferredLayout(stem.block().config().channels()), false);
        kernels.reluInPlace(stemRelu);
        stemPooled = kernels.maxPool(stemRelu, POOL_KERNEL, POOL_STRIDE, POOL_PAD);
        if (!stemPooled.needsInput() || frozenParts >= 1) {
            // The ReLU's backward reads the pooled output instead (below), the max pool's its workspace.
            arena.release(stemRelu);
            stemRelu = null;
        }
        INDArray h = stemPooled.output();
        if (frozenParts >= 1) {
            // Inference only: nothing is kept for a backward that never reaches the stem.
            stem.block().clearSaved();
            arena.release(stemPooled.workspace());
            stemPooled = null;
            frozenOutput = h;
        }
        for (int i = 0; i < stages.size(); i++) {
            if (i < frozenParts - 1) {
                for (ResidualUnit u : stages.get(i).units()) {
                    INDArray out = u.forward(h);
                    u.releaseOwnership(); // out is ours now, the unit keeps nothing
                    arena.release(frozenOutput);
                    frozenOutput = out;
                    h = out;
                }
            } else {
                h = stages.get(i).forward(h);
            }
        }
        pooledShape = Layout.logicalShape(h);
        pooledLayout = Layout.of(h);
        pooled = kernels.globalAveragePool(h);
        if (frozenParts == stages.size() + 1) {
            arena.release(frozenOutput); // only the head trains: the last feature map is not needed any more
            frozenOutput = null;
        }
        return fc.forward(pooled);
    }

    /**
     * Backpropagates the last forward, handing each parameter gradient to {@code sink} as soon as it exists, and
     * gives back every activation it made. dL/d(input) is not computed.
     *
     * @param gradLogits dL/dlogits, not modified
     * @param sink receives every trainable tensor's gradient, head first
     */
    @Override
    public void backward(INDArray gradLogits, GradientSink sink) {
        if (!pending) {
            throw new IllegalStateException("backward: expected a pending forward, got none (call forward first; "
                    + "each forward allows one backward)");
        }
        INDArray dPooled = fc.backward(gradLogits, sink);
        if (frozenParts == stages.size() + 1) {
            arena.release(dPooled, pooled);
            pooled = null;
            pending = false;
            return;
        }
        INDArray g = kernels.globalAveragePoolBackward(dPooled, pooledShape, pooledLayout);
        arena.release(dPooled, pooled);
        pooled = null;
        int firstTrainable = Math.max(0, frozenParts - 1);
        for (int i = stages.size() - 1; i > firstTrainable; i--) {
            g = stages.get(i).backward(g, sink); // the stage takes g over
        }
        if (frozenParts >= 1) {
            // dL/d(frozen output) is not needed: the first trainable stage computes none. The frozen output was its
            // input.
            stages.get(firstTrainable).backwardWithoutInputGradient(g, sink);
            arena.release(frozenOutput);
            frozenOutput = null;
            pending = false;
            return;
        }
        g = stages.get(0).backward(g, sink);
        INDArray dStem;
        if (stemRelu != null) {
            dStem = kernels.maxPoolBackward(stemRelu, stemPooled, g, POOL_KERNEL, POOL_STRIDE, POOL_PAD);
            kernels.reluBackwardInPlace(stemRelu, dStem);
            arena.release(stemRelu);
            stemRelu = null;
        } else {
            // relu'(r) at a window's argmax is 1[max > 0] = 1[pooled > 0]: mask before routing, bit for bit the same.
            kernels.reluBackwardInPlace(stemPooled.output(), g);
            dStem = kernels.maxPoolBackward(null, stemPooled, g, POOL_KERNEL, POOL_STRIDE, POOL_PAD);
        }
        arena.release(g, stemPooled.output(), stemPooled.workspace());
        stemPooled = null;
        stem.backward(dStem, false, sink); // dL/d(input) is not needed
        arena.release(dStem);
        pending = false;
    }

    /**
     * @return every trainable tensor by network name (blocks outside the frozen prefix in the current mode, then
     *         fc); live arrays
     */
    @Override
    public Map<String, INDArray> parameters() {
        Map<String, INDArray> m = new LinkedHashMap<>();
        List<NamedBlock> frozen = frozenBlocks();
        for (NamedBlock b : allBlocks) {
            if (!frozen.contains(b)) {
                m.putAll(b.parameters());
            }
        }
        m.putAll(fc.parameters());
        return m;
    }

    /**
     * The exact bytes held for backward right now, each array counted once even when several layers keep it (a
     * ReLU's output is also the next block's input).
     */
    @Override
    public RetainedBytes retainedBytes() {
        List<INDArray> own = new ArrayList<>();
        stages.forEach(st -> st.collectRetained(own));
        if (stemPooled != null) {
            if (stemRelu != null) {
                own.add(stemRelu);
            }
            own.add(stemPooled.output());
            if (stemPooled.workspace() != null) {
                own.add(stemPooled.workspace());
            }
        }
        own.add(fc.savedInput());
        return Network.retained(allBlocks, own);
    }

    /** Frees the network's kernels (their cached primitives) and arena: nothing it handed out may be used after. */
    @Override
    public void close() {
        clearSaved();
        kernels().close();
        arena.close();
    }
}
