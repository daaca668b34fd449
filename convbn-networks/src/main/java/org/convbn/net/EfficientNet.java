package org.convbn.net;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.BatchNormConfig;
import org.convbn.core.ConvConfig;
import org.convbn.core.TuneFold;
import org.convbn.core.proxy.Activation;
import org.convbn.core.proxy.ProxyNormConfig;
import org.convbn.nd4j.ConvProxyNormBlock;
import org.convbn.nd4j.ProxyNormParameters;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.PooledArena;

/**
 * EfficientNet-B0 .. B3 (torchvision's {@code efficientnet_b0} .. {@code efficientnet_b3}: structure, module names,
 * parameter counts) built from ConvBN blocks, so that every conv + BN pair runs in the four modes. B0:
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
 * B1 .. B3 scale it as torchvision does ({@link Variant}): every width times the width multiplier rounded to a
 * multiple of 8 (never more than 10% down), every stage's units times the depth multiplier rounded up, the last conv
 * four times the last stage's width, and their own dropout. Convs have no bias, BN eps 1e-5 and momentum 0.1.
 *
 * <p>The grouped variant ({@link Builder#groupSize}) follows "Making EfficientNet More Efficient" (Masters et al.,
 * 2021): every depthwise conv becomes a group conv of G input channels per group and, to keep the cost in line, the
 * expansion ratio of the expanding stages goes from 6 to 4; names are unchanged, weight shapes follow. The
 * proxy-normalised variant ({@link Builder#normalization}) puts GroupNorm and a proxy-normalised activation after
 * every conv in place of BN and SiLU ({@link ProxyNormLayer}). Forward, backward, freezing and memory are
 * {@link InvertedResidualNetwork}'s.
 */
@NotThreadSafe
public final class EfficientNet extends InvertedResidualNetwork {
    /** torchvision's B0 .. B3: width and depth multipliers, classifier dropout. */
    public enum Variant {
        /** 5,288,548 parameters at 1000 classes. */
        B0(1.0, 1.0, 0.2),
        /** Deeper: 7,794,184 parameters. */
        B1(1.0, 1.1, 0.2),
        /** 9,109,994 parameters. */
        B2(1.1, 1.2, 0.3),
        /** 12,233,232 parameters. */
        B3(1.2, 1.4, 0.3);

        private final double widthMultiplier;
        private final double depthMultiplier;
        private final double dropout;

        Variant(double widthMultiplier, double depthMultiplier, double dropout) {
            this.widthMultiplier = widthMultiplier;
            this.depthMultiplier = depthMultiplier;
            this.dropout = dropout;
        }

        /** @return torchvision's builder name, e.g. {@code "efficientnet_b1"} */
        public String torchvisionName() {
            return "efficientnet_" + name().toLowerCase(Locale.ROOT);
        }

        /** @return the classifier's dropout probability in torchvision's model */
        public double dropout() {
            return dropout;
        }

        /** torchvision's {@code adjust_channels}: {@code c} times the width multiplier, to a multiple of 8. */
        int channels(int c) {
            return makeDivisible(c * widthMultiplier, 8);
        }

        /** torchvision's {@code adjust_depth}: units rounded up. */
        int units(int units) {
            return (int) Math.ceil(units * depthMultiplier);
        }
    }

    /**
     * torchvision's (and TensorFlow's) {@code _make_divisible}: the multiple of {@code divisor} nearest to
     * {@code v}, at least {@code divisor}, and not more than 10% below {@code v}.
     */
    static int makeDivisible(double v, int divisor) {
        int rounded = Math.max(divisor, (int) (v + divisor / 2.0) / divisor * divisor);
        return rounded < 0.9 * v ? rounded + divisor : rounded;
    }

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

    /** One row of the B0 table (channels and units before the variant's multipliers). */
    private record StageSpec(int expandRatio, int kernel, int stride, int out, int units) {}

    private static final List<StageSpec> B0 = List.of(
            new StageSpec(1, 3, 1, 16, 1),
            new StageSpec(6, 3, 2, 24, 2),
            new StageSpec(6, 5, 2, 40, 2),
            new StageSpec(6, 3, 2, 80, 3),
            new StageSpec(6, 5, 1, 112, 3),
            new StageSpec(6, 5, 2, 192, 4),
            new StageSpec(6, 3, 1, 320, 1));
    private static final int STEM_CHANNELS = 32;
    /** The last conv's width over the last stage's. */
    private static final int LAST_CONV_EXPANSION = 4;
    /** The expansion ratio the grouped variant uses where B0 expands by 6. */
    public static final int GROUPED_EXPAND_RATIO = 4;

    private final Variant variant;
    private final int groupSize;
    private final Normalization normalization;

    private EfficientNet(
            Builder b,
            Kernels kernels,
            PooledArena arena,
            ConvLayer stem,
            List<MBConv> units,
            int[] stageSizes,
            ConvLayer last,
            Linear classifier) {
        super(
                name(b),
                features(stageSizes.length + 2),
                kernels,
                arena,
                stem,
                units,
                stageSizes,
                last,
                null,
                classifier,
                b.dataType,
                b.mode,
                b.dropout >= 0 ? b.dropout : b.variant.dropout,
                b.seed);
        this.variant = b.variant;
        this.groupSize = b.groupSize;
        this.normalization = b.normalization;
    }

    private static String name(Builder b) {
        return b.variant.torchvisionName()
                + (b.groupSize > 0 ? "_g" + b.groupSize : "")
                + (b.normalization == Normalization.GROUP_NORM_PROXY ? "_proxy" : "");
    }

    /**
     * @return a builder of EfficientNet-B0 with PyTorch's default BN initialisation (gamma 1, beta 0, running mean
     *         0, var 1): 1000 classes, FLOAT, seed 0, EVAL, {@link TuneFold#RECOMPUTE}, depthwise convs, stochastic
     *         depth 0.2 and the variant's dropout unless set otherwise
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
        private Variant variant = Variant.B0;
        private double stochasticDepth = 0.2;
        /** Negative: the variant's. */
        private double dropout = -1;

        private double batchNormMomentum = BatchNormConfig.DEFAULT_MOMENTUM;
        private Normalization normalization = Normalization.BATCH_NORM;

        private Builder() {}

        /** @param variant B0 (default) .. B3 */
        public Builder variant(Variant variant) {
            this.variant = variant;
            return this;
        }

        /** @param p the last unit's stochastic depth probability (unit i of n drops with {@code p i / n}), [0, 1) */
        public Builder stochasticDepth(double p) {
            this.stochasticDepth = p;
            return this;
        }

        /** @param p the classifier's dropout probability, [0, 1); the variant's (0.2 for B0) unless set */
        public Builder dropout(double p) {
            this.dropout = checkDropout(p);
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
         *                 {@code running = (1 - momentum) running + momentum batch}; torchvision's uses 0.1, and 1
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
            Objects.requireNonNull(variant, "variant");
            Objects.requireNonNull(normalization, "normalization");
            if (normalization == Normalization.GROUP_NORM_PROXY && precision.isBf16()) {
                throw new IllegalArgumentException(
                        "precision: the proxy-normalised blocks keep feature maps in the data "
                                + "type, expected FULL with " + normalization + ", got " + precision);
            }
            if (!(stochasticDepth >= 0 && stochasticDepth < 1)) {
                throw new IllegalArgumentException(
                        "stochasticDepth: expected a value in [0, 1), got " + stochasticDepth);
            }
            if (!(batchNormMomentum > 0 && batchNormMomentum <= 1)) {
                throw new IllegalArgumentException(
                        "batchNormMomentum: expected a value in (0, 1], got " + batchNormMomentum);
            }
            return create(this);
        }
    }

    private static EfficientNet create(Builder b) {
        return ConvLayers.owning(b, (arena, kernels) -> create(b, arena, kernels));
    }

    private static EfficientNet create(Builder b, PooledArena arena, Kernels kernels) {
        ConvLayers.Factory blocks =
                new ConvLayers.Factory(b, kernels, BatchNormConfig.DEFAULT_EPS, b.batchNormMomentum);
        // a conv + norm pair, its conv name.0 and its norm name.1, then SiLU (else it is a projection)
        LayerFactory make = (name, c, silu) -> {
            try {
                if (b.normalization == Normalization.BATCH_NORM) {
                    return blocks.layer(name, c, silu ? ConvActivation.SILU : ConvActivation.IDENTITY);
                }
                int channels = c.outChannels();
                ProxyNormConfig norm = ProxyNormConfig.groupNorm(
                        channels,
                        channels / Normalization.GROUP_NORM_CHANNELS,
                        silu ? Activation.SILU : Activation.IDENTITY);
                return new ProxyNormLayer(
                        name + ".0",
                        name + ".1",
                        new ConvProxyNormBlock(
                                c, norm, ProxyNormParameters.initialize(c, b.dataType, blocks.nextSeed()), kernels));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(name + ": " + e.getMessage(), e);
            }
        };
        Variant v = b.variant;
        int in = v.channels(STEM_CHANNELS);
        ConvLayer stem = make.make("features.0", ConvLayers.conv(3, in, 3, 2, 0), true);
        List<MBConv> units = new ArrayList<>();
        int[] stageSizes = B0.stream().mapToInt(spec -> v.units(spec.units())).toArray();
        int total = Arrays.stream(stageSizes).sum();
        int id = 0;
        for (int s = 0; s < B0.size(); s++) {
            StageSpec spec = B0.get(s);
            int ratio = b.groupSize > 0 && spec.expandRatio() > 1 ? GROUPED_EXPAND_RATIO : spec.expandRatio();
            int out = v.channels(spec.out());
            for (int i = 0; i < stageSizes[s]; i++) {
                String p = "features." + (s + 1) + "." + i + ".block.";
                int stride = i == 0 ? spec.stride() : 1;
                int expanded = makeDivisible(in * ratio, 8);
                int k = 0;
                ConvLayer expand = null;
                if (ratio != 1) {
                    expand = make.make(p + k++, ConvLayers.conv(in, expanded, 1, 1, 0), true);
                }
                int groupSize = b.groupSize > 0 ? b.groupSize : 1;
                ConvLayer depthwise =
                        make.make(p + k++, ConvLayers.conv(expanded, expanded, spec.kernel(), stride, groupSize), true);
                SqueezeExcitation se = new SqueezeExcitation(
                        p + k++, expanded, Math.max(1, in / 4), b.dataType, blocks.nextSeed(), kernels);
                ConvLayer project = make.make(p + k, ConvLayers.conv(expanded, out, 1, 1, 0), false);
                units.add(new MBConv(expand, depthwise, se, project, kernels, b.stochasticDepth * id / total));
                in = out;
                id++;
            }
        }
        int lastWidth = LAST_CONV_EXPANSION * in;
        ConvLayer last = make.make("features.8", ConvLayers.conv(in, lastWidth, 1, 1, 0), true);
        Linear classifier = new Linear("classifier.1", lastWidth, b.classes, b.dataType, blocks.nextSeed(), arena);
        return new EfficientNet(b, kernels, arena, stem, units, stageSizes, last, classifier);
    }

    @FunctionalInterface
    private interface LayerFactory {
        /**
         * @param name the module name of the conv + norm pair (its conv is {@code name.0}, its norm {@code name.1})
         * @param silu whether SiLU follows (else the layer is a projection)
         */
        ConvLayer make(String name, ConvConfig conv, boolean silu);
    }

    /** @return B0 .. B3 */
    public Variant variant() {
        return variant;
    }

    /** @return input channels per group of the grouped variant, 0 for the depthwise convs */
    public int groupSize() {
        return groupSize;
    }

    /** @return what follows each conv */
    public Normalization normalization() {
        return normalization;
    }
}
