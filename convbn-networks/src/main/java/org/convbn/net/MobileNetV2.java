package org.convbn.net;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.TuneFold;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.PooledArena;

/**
 * MobileNetV2 (torchvision's {@code mobilenet_v2}: structure, module names, 3,504,872 parameters at 1000 classes)
 * built from ConvBN blocks, so that every conv + BN pair runs in the four modes:
 *
 * <pre>
 * features.0       3x3/2 ConvBN 3 -> 32, ReLU6                            (features.0.0 conv, features.0.1 BN)
 * features.1..17   {@link MBConv} units without squeeze-and-excitation, one module each
 *                  (expansion t, out channels c, units n, first stride s):
 *                  (1, 16, 1, 1) (6, 24, 2, 2) (6, 32, 3, 2) (6, 64, 4, 2) (6, 96, 3, 1) (6, 160, 3, 2) (6, 320, 1, 1)
 *                  expand 1x1 ConvBN + ReLU6 ({@code conv.0.0}/{@code conv.0.1}, absent for t = 1), depthwise 3x3
 *                  ConvBN + ReLU6 ({@code conv.1.0}/{@code conv.1.1}), project 1x1 conv {@code conv.2} with its BN
 *                  {@code conv.3} (for t = 1: {@code conv.0.*}, {@code conv.1}, {@code conv.2})
 * features.18      1x1 ConvBN 320 -> 1280, ReLU6
 * avgpool          global average pooling
 * classifier       dropout 0.2 ({@code classifier.0}), linear 1280 -> classes ({@code classifier.1})
 * </pre>
 *
 * Convs have no bias, BN eps 1e-5 and momentum 0.1; no stochastic depth. Forward, backward, freezing (every
 * {@code features.i} is a part) and memory are {@link InvertedResidualNetwork}'s.
 */
@NotThreadSafe
public final class MobileNetV2 extends InvertedResidualNetwork {
    /** One row of torchvision's {@code inverted_residual_setting}: expansion t, out channels c, units n, stride s. */
    private record Row(int t, int c, int n, int s) {}

    private static final List<Row> SETTING = List.of(
            new Row(1, 16, 1, 1),
            new Row(6, 24, 2, 2),
            new Row(6, 32, 3, 2),
            new Row(6, 64, 4, 2),
            new Row(6, 96, 3, 1),
            new Row(6, 160, 3, 2),
            new Row(6, 320, 1, 1));
    private static final int STEM_CHANNELS = 32;
    private static final int LAST_CHANNELS = 1280;
    /** torchvision's classifier dropout. */
    public static final double DROPOUT = 0.2;

    private MobileNetV2(
            Builder b,
            Kernels kernels,
            PooledArena arena,
            ConvLayer stem,
            List<MBConv> units,
            int[] stageSizes,
            ConvLayer last,
            Linear classifier) {
        super(
                "mobilenet_v2",
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
                b.dropout,
                b.seed);
    }

    /**
     * @return a builder with PyTorch's default BN initialisation (gamma 1, beta 0, running mean 0, var 1): 1000
     *         classes, FLOAT, seed 0, EVAL, {@link TuneFold#RECOMPUTE}, dropout {@value #DROPOUT} unless set otherwise
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
         * @throws IllegalArgumentException naming the setting out of range (a group size: MobileNetV2 has only
         *                                  depthwise convs)
         */
        public MobileNetV2 build() {
            validate();
            requireOwnGroups("MobileNetV2's depthwise convs");
            return create(this);
        }
    }

    private static MobileNetV2 create(Builder b) {
        return ConvLayers.owning(b, (arena, kernels) -> create(b, arena, kernels));
    }

    private static MobileNetV2 create(Builder b, PooledArena arena, Kernels kernels) {
        ConvLayers.Factory make = new ConvLayers.Factory(b, kernels);
        int in = STEM_CHANNELS;
        ConvLayer stem = make.layer("features.0", ConvLayers.conv(3, in, 3, 2, 0), ConvActivation.RELU6);
        List<MBConv> units = new ArrayList<>();
        int feature = 1;
        for (Row row : SETTING) {
            int out = EfficientNet.makeDivisible(row.c(), 8);
            for (int i = 0; i < row.n(); i++) {
                String p = "features." + feature++ + ".conv.";
                int stride = i == 0 ? row.s() : 1;
                int hidden = Math.round((float) in * row.t());
                int k = 0;
                ConvLayer expand = null;
                if (row.t() != 1) {
                    expand = make.layer(p + k++, ConvLayers.conv(in, hidden, 1, 1, 0), ConvActivation.RELU6);
                }
                ConvLayer depthwise =
                        make.layer(p + k++, ConvLayers.conv(hidden, hidden, 3, stride, 1), ConvActivation.RELU6);
                // the projection's conv and BN are two modules of the sequence: conv.k and conv.k+1
                ConvLayer project =
                        make.layer(p + k, p + (k + 1), ConvLayers.conv(hidden, out, 1, 1, 0), ConvActivation.IDENTITY);
                units.add(new MBConv(expand, depthwise, null, project, kernels, 0));
                in = out;
            }
        }
        int[] stageSizes = new int[units.size()];
        Arrays.fill(stageSizes, 1);
        ConvLayer last =
                make.layer("features." + feature, ConvLayers.conv(in, LAST_CHANNELS, 1, 1, 0), ConvActivation.RELU6);
        Linear classifier = new Linear("classifier.1", LAST_CHANNELS, b.classes, b.dataType, make.nextSeed(), arena);
        return new MobileNetV2(b, kernels, arena, stem, units, stageSizes, last, classifier);
    }
}
