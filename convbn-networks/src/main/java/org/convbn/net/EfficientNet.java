package org.convbn.net;

import net.jcip.annotations.NotThreadSafe;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;

import org.convbn.core.BatchNormConfig;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.convbn.core.Mode;
import org.convbn.core.RetainedBytes;
import org.convbn.core.TuneFold;
import org.convbn.core.proxy.Activation;
import org.convbn.core.proxy.ProxyNormConfig;
import org.convbn.nd4j.ConvBNBlock;
import org.convbn.nd4j.ConvBNParameters;
import org.convbn.nd4j.ConvProxyNormBlock;
import org.convbn.nd4j.ProxyNormParameters;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.Layout;
import org.convbn.nd4j.kernel.PooledArena;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.MulOp;
import org.nd4j.linalg.factory.Nd4j;

/**
 * EfficientNet-B0 (torchvision's {@code efficientnet_b0}: structure, module names, 5,288,548 parameters) built from
 * ConvBN blocks, so that every conv + BN pair runs in the four modes:
 *
 * <pre>
 * features.0     3x3/2 ConvBN 3 -> 32, SiLU
 * features.1..7  {@link MBConv} stages (expansion, kernel, stride, out channels, units):
 *                (1, 3, 1, 16, 1) (6, 3, 2, 24, 2) (6, 5, 2, 40, 2) (6, 3, 2, 80, 3) (6, 5, 1, 112, 3)
 *                (6, 5, 2, 192, 4) (6, 3, 1, 320, 1); squeeze-and-excitation to max(1, in / 4) channels;
 *                stochastic depth p = 0.2 i / 16 for the i-th of the 16 units
 * features.8     1x1 ConvBN 320 -> 1280, SiLU
 * avgpool        global average pooling
 * classifier     dropout 0.2 ({@code classifier.0}), linear 1280 -> classes ({@code classifier.1})
 * </pre>
 *
 * Convs have no bias, BN eps 1e-5 and momentum 0.1 (as torchvision's B0). Dropout and stochastic depth are on while
 * {@link #setStochastic} says so (PyTorch's {@code train()}; default on), drawn from the network's own seeded
 * generator, so two networks built with the same seed draw the same masks whatever their mode.
 *
 * <p>The grouped variant ({@link Builder#groupSize}) follows "Making EfficientNet More Efficient" (Masters et al.,
 * 2021): every depthwise conv becomes a group conv of G input channels per group and, to keep the cost in line, the
 * expansion ratio of the expanding stages goes from 6 to 4; names are unchanged, weight shapes follow. The
 * proxy-normalised variant ({@link Builder#normalization}) puts GroupNorm and a proxy-normalised activation after
 * every conv in place of BN and SiLU ({@link ProxyNormLayer}).
 *
 * <p>Memory as {@link ResNet}: one {@link PooledArena} owns every activation, temporary and gradient of a step;
 * feature maps stay in the kernels' preferred layout. Not thread-safe: one thread at a time.
 */
@NotThreadSafe
public final class EfficientNet implements Network {
    /** What follows each conv. */
    public enum Normalization {
        /** BatchNorm (a ConvBN block in the network's mode), then SiLU: torchvision's B0. */
        BATCH_NORM,
        /**
         * GroupNorm ({@value #GROUP_NORM_CHANNELS} channels per group, no affine) and a proxy-normalised SiLU
         * ({@link org.convbn.nd4j.ConvProxyNormBlock}; the projections' activation is the identity): no batch
         * statistics, so no modes. The norm's tensors are {@code gamma}, {@code beta}, {@code beta_tilde},
         * {@code gamma_tilde} under the BN's module name.
         */
        GROUP_NORM_PROXY;

        /** Channels per GroupNorm group of {@link #GROUP_NORM_PROXY}: every B0 width is a multiple. */
        public static final int GROUP_NORM_CHANNELS = 8;
    }

    /** One row of the B0 table. */
    private record StageSpec(int expandRatio, int kernel, int stride, int out, int units) {
    }

    private static final List<StageSpec> B0 = List.of(new StageSpec(1, 3, 1, 16, 1), new StageSpec(6, 3, 2, 24, 2),
            new StageSpec(6, 5, 2, 40, 2), new StageSpec(6, 3, 2, 80, 3), new StageSpec(6, 5, 1, 112, 3),
            new StageSpec(6, 5, 2, 192, 4), new StageSpec(6, 3, 1, 320, 1));
    private static final int STEM_CHANNELS = 32;
    private static final int HEAD_CHANNELS = 1280;
    /** The expansion ratio the grouped variant uses where B0 expands by 6. */
    public static final int GROUPED_EXPAND_RATIO = 4;
    /** The smallest input side: five stride-2 stages. */
    public static final int MIN_RESOLUTION = 32;

    private final Kernels kernels;
    private final PooledArena arena;
    private final ConvLayer stem;
    private final List<MBConv> units;
    private final ConvLayer head;
    private Linear classifier;
    private final DataType dataType;
    private final int groupSize;
    private final Normalization normalization;
    private final double dropout;
    private final List<NamedBlock> allBlocks;
    private final SplittableRandom rng;
    private Mode mode;
    private boolean stochastic = true;
    // Between forward and backward, owned by the network:
    private boolean pending;
    /** The stem's output (the first unit's input). */
    private INDArray stemActivation;
    private INDArray pooled;
    private INDArray dropMask;
    private INDArray dropped;
    private long[] pooledShape;
    private Layout pooledLayout;

    private EfficientNet(Builder b, Kernels kernels, PooledArena arena, ConvLayer stem, List<MBConv> units,
                         ConvLayer head, Linear classifier) {
        this.kernels = kernels;
        this.arena = arena;
        this.stem = stem;
        this.units = List.copyOf(units);
        this.head = head;
        this.classifier = classifier;
        this.dataType = b.dataType;
        this.groupSize = b.groupSize;
        this.normalization = b.normalization;
        this.dropout = b.dropout;
        this.mode = b.mode;
        this.rng = new SplittableRandom(b.seed ^ 0x9E3779B97F4A7C15L);
        List<NamedBlock> all = new ArrayList<>();
        stem.block().ifPresent(all::add);
        units.forEach(u -> all.addAll(u.blocks()));
        head.block().ifPresent(all::add);
        this.allBlocks = Collections.unmodifiableList(all);
    }

    /**
     * @return a builder of EfficientNet-B0 with PyTorch's default BN initialisation (gamma 1, beta 0, running mean
     *         0, var 1): 1000 classes, FLOAT, seed 0, EVAL, {@link TuneFold#RECOMPUTE}, depthwise convs, stochastic
     *         depth 0.2 and dropout 0.2 unless set otherwise
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * What a network is made of ({@link NetworkBuilder}'s settings; the group size makes the grouped variant: group
     * convs of that many input channels per group in place of the depthwise convs, expansion ratio
     * {@value #GROUPED_EXPAND_RATIO} in place of 6). Validated in {@link #build()}.
     */
    @NotThreadSafe
    public static final class Builder extends NetworkBuilder<Builder> {
        private double stochasticDepth = 0.2;
        private double dropout = 0.2;
        private double batchNormMomentum = BatchNormConfig.DEFAULT_MOMENTUM;
        private Normalization normalization = Normalization.BATCH_NORM;

        private Builder() {
        }

        /** @param p the last unit's stochastic depth probability (unit i of 16 drops with {@code p i / 16}), [0, 1) */
        public Builder stochasticDepth(double p) {
            this.stochasticDepth = p;
            return this;
        }

        /** @param p the classifier's dropout probability, [0, 1) */
        public Builder dropout(double p) {
            this.dropout = p;
            return this;
        }

        /**
         * @param normalization what follows each conv: BatchNorm (torchvision's) or GroupNorm with a
         *                      proxy-normalised activation
         */
        public Builder normalization(Normalization normalization) {
            this.normalization = normalization;
            return this;
        }

        /**
         * @param momentum every BN's running-statistics momentum in TRAIN, (0, 1]: PyTorch's convention,
         *                 {@code running = (1 - momentum) running + momentum batch}; torchvision's B0 uses 0.1, and 1
         *                 makes one TRAIN forward set the statistics to its batch's
         */
        public Builder batchNormMomentum(double momentum) {
            this.batchNormMomentum = momentum;
            return this;
        }

        /**
         * @return the network, the caller's to close
         * @throws IllegalArgumentException naming the setting out of range (a group size that does not divide some
         *                                  conv's channels is named by that conv)
         */
        public EfficientNet build() {
            validate();
            Objects.requireNonNull(normalization, "normalization");
            if (!(stochasticDepth >= 0 && stochasticDepth < 1)) {
                throw new IllegalArgumentException("stochasticDepth: expected a value in [0, 1), got "
                        + stochasticDepth);
            }
            if (!(dropout >= 0 && dropout < 1)) {
                throw new IllegalArgumentException("dropout: expected a value in [0, 1), got " + dropout);
            }
            if (!(batchNormMomentum > 0 && batchNormMomentum <= 1)) {
                throw new IllegalArgumentException("batchNormMomentum: expected a value in (0, 1], got "
                        + batchNormMomentum);
            }
            return create(this);
        }
    }

    @FunctionalInterface
    private interface LayerFactory {
        /**
         * @param name the module name of the conv + norm pair (its conv is {@code name.0}, its norm {@code name.1})
         * @param silu whether SiLU follows (else the layer is a projection)
         */
        ConvLayer make(String name, ConvConfig conv, boolean silu);
    }

    private static EfficientNet create(Builder b) {
        long[] nextSeed = {b.seed};
        PooledArena arena = Arena.pooled();
        Kernels kernels = Kernels.create(b.dataType, arena);
        LayerFactory make = (name, c, silu) -> {
            try {
                if (b.normalization == Normalization.GROUP_NORM_PROXY) {
                    int channels = c.outChannels();
                    ProxyNormConfig norm = ProxyNormConfig.groupNorm(channels,
                            channels / Normalization.GROUP_NORM_CHANNELS, silu ? Activation.SILU : Activation.IDENTITY);
                    return new ProxyNormLayer(name + ".0", name + ".1", new ConvProxyNormBlock(c, norm,
                            ProxyNormParameters.initialize(c, b.dataType, nextSeed[0]++)), arena);
                }
                ConvBNConfig config = new ConvBNConfig(c,
                        BatchNormConfig.of(c.outChannels()).withMomentum(b.batchNormMomentum), true, b.tuneFold);
                ConvBNBlock block = ConvBNBlock.of(config, ConvBNParameters.initialize(config, b.dataType,
                        nextSeed[0]++), b.mode, kernels);
                return new BatchNormLayer(new NamedBlock(name + ".0", name + ".1", block), silu);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(name + ": " + e.getMessage(), e);
            }
        };
        ConvLayer stem = make.make("features.0", conv(3, STEM_CHANNELS, 3, 2, 0), true);
        List<MBConv> units = new ArrayList<>();
        int total = B0.stream().mapToInt(StageSpec::units).sum();
        int in = STEM_CHANNELS;
        int id = 0;
        for (int s = 0; s < B0.size(); s++) {
            StageSpec spec = B0.get(s);
            int ratio = b.groupSize > 0 && spec.expandRatio() > 1 ? GROUPED_EXPAND_RATIO : spec.expandRatio();
            for (int i = 0; i < spec.units(); i++) {
                String p = "features." + (s + 1) + "." + i + ".block.";
                int stride = i == 0 ? spec.stride() : 1;
                int expanded = in * ratio;
                int k = 0;
                ConvLayer expand = null;
                if (ratio != 1) {
                    expand = make.make(p + k++, conv(in, expanded, 1, 1, 0), true);
                }
                int groupSize = b.groupSize > 0 ? b.groupSize : 1;
                ConvLayer depthwise = make.make(p + k++, conv(expanded, expanded, spec.kernel(), stride, groupSize),
                        true);
                SqueezeExcitation se = new SqueezeExcitation(p + k++, expanded, Math.max(1, in / 4), b.dataType,
                        nextSeed[0]++, kernels);
                ConvLayer project = make.make(p + k, conv(expanded, spec.out(), 1, 1, 0), false);
                units.add(new MBConv(expand, depthwise, se, project, kernels, b.stochasticDepth * id / total));
                in = spec.out();
                id++;
            }
        }
        ConvLayer head = make.make("features.8", conv(in, HEAD_CHANNELS, 1, 1, 0), true);
        Linear classifier = new Linear("classifier.1", HEAD_CHANNELS, b.classes, b.dataType, nextSeed[0], arena);
        return new EfficientNet(b, kernels, arena, stem, units, head, classifier);
    }

    /** A bias-free conv with padding k / 2; {@code groupSize} 0 dense, else input channels per group. */
    private static ConvConfig conv(int in, int out, int kernel, int stride, int groupSize) {
        ConvConfig.Builder c = ConvConfig.builder(in, out).kernel(kernel).stride(stride).padding(kernel / 2)
                .bias(false);
        return (groupSize > 0 ? c.groupSize(groupSize) : c).build();
    }

    /** @return the stem layer (features.0) */
    public ConvLayer stem() {
        return stem;
    }

    /** @return the 16 MBConv units in forward order */
    public List<MBConv> units() {
        return units;
    }

    /** @return the last conv layer (features.8) */
    public ConvLayer headLayer() {
        return head;
    }

    /** @return the classifier's linear layer (classifier.1) */
    public Linear classifier() {
        return classifier;
    }

    /**
     * Replaces the classifier's linear layer by a new one for {@code classes} outputs with PyTorch's default
     * initialisation: the transfer-learning step from a network pretrained on one label set to another. Drops a
     * pending forward.
     *
     * @param classes the new layer's output size, at least 1
     * @param seed the seed of its weight draw
     * @throws IllegalArgumentException if {@code classes < 1}
     */
    public void replaceHead(int classes, long seed) {
        if (classes < 1) {
            throw new IllegalArgumentException("classes: expected >= 1, got " + classes);
        }
        clearSaved();
        classifier = new Linear("classifier.1", HEAD_CHANNELS, classes, dataType, seed, arena);
    }

    /** @return input channels per group of the grouped variant, 0 for B0's depthwise convs */
    public int groupSize() {
        return groupSize;
    }

    /** @return what follows each conv */
    public Normalization normalization() {
        return normalization;
    }

    /** @return every conv layer in forward order: the stem, each unit's, the head */
    public List<ConvLayer> layers() {
        List<ConvLayer> all = new ArrayList<>();
        all.add(stem);
        units.forEach(u -> all.addAll(u.layers()));
        all.add(head);
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
        allBlocks.forEach(b -> b.block().setMode(mode));
        this.mode = mode;
    }

    @Override
    public List<NamedBlock> blocks() {
        return allBlocks;
    }

    /**
     * @return the proxy-normalised layers' tensors (none with BatchNorm), every squeeze-and-excitation tensor in unit
     *         order, then the classifier's; live arrays
     */
    @Override
    public Map<String, INDArray> layerParameters() {
        Map<String, INDArray> m = new LinkedHashMap<>();
        layers().forEach(l -> m.putAll(l.layerParameters()));
        units.forEach(u -> m.putAll(u.squeezeExcitation().parameters()));
        m.putAll(classifier.parameters());
        return m;
    }

    @Override
    public Map<String, INDArray> parameters() {
        Map<String, INDArray> m = new LinkedHashMap<>();
        allBlocks.forEach(b -> m.putAll(b.parameters()));
        m.putAll(layerParameters());
        return m;
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
        stemActivation = stem.forward(x);
        INDArray h = stemActivation;
        for (MBConv u : units) {
            h = u.forward(h, draw);
        }
        INDArray headActivation = head.forward(h);
        pooledShape = Layout.logicalShape(headActivation);
        pooledLayout = Layout.of(headActivation);
        pooled = kernels.globalAveragePool(headActivation);
        arena.release(headActivation); // the head's backward does not read it
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
        INDArray g = kernels.globalAveragePoolBackward(dPooled, pooledShape, pooledLayout);
        arena.release(dPooled, pooled);
        pooled = null;
        INDArray d = head.backward(g, sink);
        arena.release(g);
        for (int i = units.size() - 1; i >= 0; i--) {
            INDArray next = units.get(i).backward(d, sink);
            arena.release(d);
            d = next;
        }
        arena.release(stemActivation); // the first unit's input, its backward done
        stemActivation = null;
        stem.backward(d, sink, false); // dL/d(input) is not needed
        arena.release(d);
        pending = false;
    }

    @Override
    public void clearSaved() {
        units.forEach(MBConv::clearSaved);
        stem.clearSaved();
        head.clearSaved();
        classifier.clearSaved();
        arena.release(stemActivation);
        if (dropped != pooled) {
            arena.release(dropped);
        }
        arena.release(pooled, dropMask);
        stemActivation = null;
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
        head.collectRetained(own);
        own.addAll(Arrays.asList(stemActivation, pooled, dropMask, dropped, classifier.savedInput()));
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
        kernels().close();
        arena.close();
    }
}
