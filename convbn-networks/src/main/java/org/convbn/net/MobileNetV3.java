package org.convbn.net;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.TuneFold;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.PooledArena;

/**
 * MobileNetV3-Large (torchvision's {@code mobilenet_v3_large}: structure, module names, 5,483,032 parameters at
 * 1000 classes) built from ConvBN blocks, so that every conv + BN pair runs in the four modes:
 *
 * <pre>
 * features.0       3x3/2 ConvBN 3 -> 16, hardswish
 * features.1..15   {@link MBConv} units, one module each (input, kernel, expanded, output, gate, activation,
 *                  stride): (16, 3, 16, 16, -, RE, 1) (16, 3, 64, 24, -, RE, 2) (24, 3, 72, 24, -, RE, 1)
 *                  (24, 5, 72, 40, SE, RE, 2) (40, 5, 120, 40, SE, RE, 1) x2 (40, 3, 240, 80, -, HS, 2)
 *                  (80, 3, 200, 80, -, HS, 1) (80, 3, 184, 80, -, HS, 1) x2 (80, 3, 480, 112, SE, HS, 1)
 *                  (112, 3, 672, 112, SE, HS, 1) (112, 5, 672, 160, SE, HS, 2) (160, 5, 960, 160, SE, HS, 1) x2;
 *                  {@code block.0} expand (absent where expanded = input), then depthwise, gate, project;
 *                  RE = ReLU, HS = hardswish; the gate squeezes to make_divisible(expanded / 4, 8) with ReLU and
 *                  scales with hardsigmoid
 * features.16      1x1 ConvBN 160 -> 960, hardswish
 * avgpool          global average pooling
 * classifier       linear 960 -> 1280 ({@code classifier.0}), hardswish, dropout 0.2, linear 1280 -> classes
 *                  ({@code classifier.3})
 * </pre>
 *
 * Convs have no bias; BN eps 0.001 and momentum 0.01 (torchvision's for this model). No stochastic depth. Forward,
 * backward, freezing (every {@code features.i} is a part) and memory are {@link InvertedResidualNetwork}'s.
 */
@NotThreadSafe
public final class MobileNetV3 extends InvertedResidualNetwork {
    /** One row of torchvision's large setting. */
    private record Row(int in, int kernel, int expanded, int out, boolean gate, boolean hardswish, int stride) {}

    private static final List<Row> LARGE = List.of(
            new Row(16, 3, 16, 16, false, false, 1),
            new Row(16, 3, 64, 24, false, false, 2),
            new Row(24, 3, 72, 24, false, false, 1),
            new Row(24, 5, 72, 40, true, false, 2),
            new Row(40, 5, 120, 40, true, false, 1),
            new Row(40, 5, 120, 40, true, false, 1),
            new Row(40, 3, 240, 80, false, true, 2),
            new Row(80, 3, 200, 80, false, true, 1),
            new Row(80, 3, 184, 80, false, true, 1),
            new Row(80, 3, 184, 80, false, true, 1),
            new Row(80, 3, 480, 112, true, true, 1),
            new Row(112, 3, 672, 112, true, true, 1),
            new Row(112, 5, 672, 160, true, true, 2),
            new Row(160, 5, 960, 160, true, true, 1),
            new Row(160, 5, 960, 160, true, true, 1));
    private static final int STEM_CHANNELS = 16;
    /** The last conv's width over the last unit's. */
    private static final int LAST_CONV_EXPANSION = 6;

    private static final int HIDDEN_CHANNELS = 1280;
    /** torchvision's BN settings for MobileNetV3. */
    public static final double BN_EPS = 0.001;

    public static final double BN_MOMENTUM = 0.01;
    /** torchvision's classifier dropout. */
    public static final double DROPOUT = 0.2;

    private MobileNetV3(
            Builder b,
            Kernels kernels,
            PooledArena arena,
            ConvLayer stem,
            List<MBConv> units,
            int[] stageSizes,
            ConvLayer last,
            Linear hidden,
            Linear classifier) {
        super(
                "mobilenet_v3_large",
                features(stageSizes.length + 2),
                kernels,
                arena,
                stem,
                units,
                stageSizes,
                last,
                hidden,
                classifier,
                b.dataType,
                b.mode,
                b.dropout,
                b.seed);
    }

    /**
     * @return a builder of MobileNetV3-Large with PyTorch's default BN initialisation (gamma 1, beta 0, running mean
     *         0, var 1): 1000 classes, FLOAT, seed 0, EVAL, {@link TuneFold#RECOMPUTE}, dropout {@value #DROPOUT}
     *         unless set otherwise
     */
    public static Builder builder() {
        return new Builder();
    }

    /** What a network is made of ({@link NetworkBuilder}'s settings but the group size). Validated in build(). */
    @NotThreadSafe
    public static final class Builder extends NetworkBuilder<Builder> {
        private double dropout = DROPOUT;

        private Builder() {}

        /** @param p the classifier's dropout probability, [0, 1) */
        public Builder dropout(double p) {
            this.dropout = checkDropout(p);
            return this;
        }

        /**
         * @return the network, the caller's to close
         * @throws IllegalArgumentException naming the setting out of range (a group size: MobileNetV3 has only
         *                                  depthwise convs)
         */
        public MobileNetV3 build() {
            validate();
            requireOwnGroups("MobileNetV3's depthwise convs");
            return create(this);
        }
    }

    private static MobileNetV3 create(Builder b) {
        return ConvLayers.owning(b, (arena, kernels) -> create(b, arena, kernels));
    }

    private static MobileNetV3 create(Builder b, PooledArena arena, Kernels kernels) {
        ConvLayers.Factory make = new ConvLayers.Factory(b, kernels, BN_EPS, BN_MOMENTUM);
        ConvLayer stem = make.layer("features.0", ConvLayers.conv(3, STEM_CHANNELS, 3, 2, 0), ConvActivation.HARDSWISH);
        List<MBConv> units = new ArrayList<>();
        for (int i = 0; i < LARGE.size(); i++) {
            Row row = LARGE.get(i);
            String p = "features." + (i + 1) + ".block.";
            ConvActivation act = row.hardswish() ? ConvActivation.HARDSWISH : ConvActivation.RELU;
            int k = 0;
            ConvLayer expand = null;
            if (row.expanded() != row.in()) {
                expand = make.layer(p + k++, ConvLayers.conv(row.in(), row.expanded(), 1, 1, 0), act);
            }
            ConvLayer depthwise = make.layer(
                    p + k++, ConvLayers.conv(row.expanded(), row.expanded(), row.kernel(), row.stride(), 1), act);
            SqueezeExcitation gate = null;
            if (row.gate()) {
                gate = new SqueezeExcitation(
                        p + k++,
                        row.expanded(),
                        EfficientNet.makeDivisible(row.expanded() / 4, 8),
                        ConvActivation.RELU,
                        SqueezeExcitation.Scale.HARDSIGMOID,
                        b.dataType,
                        make.nextSeed(),
                        kernels);
            }
            ConvLayer project =
                    make.layer(p + k, ConvLayers.conv(row.expanded(), row.out(), 1, 1, 0), ConvActivation.IDENTITY);
            units.add(new MBConv(expand, depthwise, gate, project, kernels, 0));
        }
        int in = LARGE.get(LARGE.size() - 1).out();
        int lastWidth = LAST_CONV_EXPANSION * in;
        ConvLayer last = make.layer(
                "features." + (LARGE.size() + 1), ConvLayers.conv(in, lastWidth, 1, 1, 0), ConvActivation.HARDSWISH);
        Linear hidden = new Linear("classifier.0", lastWidth, HIDDEN_CHANNELS, b.dataType, make.nextSeed(), arena);
        Linear classifier = new Linear("classifier.3", HIDDEN_CHANNELS, b.classes, b.dataType, make.nextSeed(), arena);
        int[] stageSizes = new int[units.size()];
        Arrays.fill(stageSizes, 1);
        return new MobileNetV3(b, kernels, arena, stem, units, stageSizes, last, hidden, classifier);
    }
}
