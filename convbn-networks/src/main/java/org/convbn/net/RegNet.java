package org.convbn.net;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.TuneFold;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.PooledArena;

/**
 * RegNetY (torchvision's {@code regnet_y_400mf}: structure, module names, 4,344,144 parameters at 1000 classes) built
 * from ConvBN blocks, so that every conv + BN pair runs in the four modes:
 *
 * <pre>
 * stem                  3x3/2 ConvBN 3 -> 32, ReLU                       (stem.0, stem.1)
 * trunk_output.block1..4  stages of Y blocks ({@link MBConv} with a projection shortcut and a ReLU after the sum),
 *                       (width, units): (48, 1) (104, 3) (208, 6) (440, 6); the first unit of each stage has
 *                       stride 2 and a shortcut {@code proj} (1x1/2 ConvBN); in each unit {@code f.a} 1x1 ConvBN +
 *                       ReLU, {@code f.b} 3x3 ConvBN in groups of 8 channels + ReLU, {@code f.se} a gate squeezing
 *                       to round(0.25 x the unit's input width) with ReLU and sigmoid, {@code f.c} 1x1 ConvBN
 * avgpool               global average pooling
 * fc                    linear 440 -> classes
 * </pre>
 *
 * Units are named {@code trunk_output.block<s>.block<s>-<i>}. Convs have no bias, BN eps 1e-5 and momentum 0.1. No
 * dropout and no stochastic depth. Forward, backward, freezing (the stem and each stage are parts) and memory are
 * {@link InvertedResidualNetwork}'s.
 */
@NotThreadSafe
public final class RegNet extends InvertedResidualNetwork {
    /** torchvision's RegNetY models convbn builds, with the stage widths and depths its parameters give. */
    public enum Variant {
        /** RegNetY-400MF: depth 16, w0 48, wa 27.89, wm 2.09, group width 8, SE ratio 0.25. */
        Y_400MF(new int[] {48, 104, 208, 440}, new int[] {1, 3, 6, 6}, 8, 0.25);

        private final int[] widths;
        private final int[] depths;
        private final int groupWidth;
        private final double seRatio;

        Variant(int[] widths, int[] depths, int groupWidth, double seRatio) {
            this.widths = widths;
            this.depths = depths;
            this.groupWidth = groupWidth;
            this.seRatio = seRatio;
        }

        /** @return torchvision's builder name, e.g. {@code "regnet_y_400mf"} */
        public String torchvisionName() {
            return "regnet_" + name().toLowerCase(Locale.ROOT);
        }
    }

    private static final int STEM_CHANNELS = 32;

    private final Variant variant;

    private RegNet(Builder b, Kernels kernels, PooledArena arena, ConvLayer stem, List<MBConv> units, Linear fc) {
        super(
                b.variant.torchvisionName(),
                parts(b.variant),
                kernels,
                arena,
                stem,
                units,
                b.variant.depths.clone(),
                null,
                null,
                fc,
                b.dataType,
                b.mode,
                0,
                b.seed);
        this.variant = b.variant;
    }

    private static List<String> parts(Variant v) {
        List<String> p = new ArrayList<>();
        p.add("stem");
        for (int s = 1; s <= v.depths.length; s++) {
            p.add("trunk_output.block" + s);
        }
        return p;
    }

    /**
     * @return a builder of RegNetY-400MF with PyTorch's default BN initialisation (gamma 1, beta 0, running mean 0,
     *         var 1): 1000 classes, FLOAT, seed 0, EVAL, {@link TuneFold#RECOMPUTE} unless set otherwise
     */
    public static Builder builder() {
        return new Builder();
    }

    /** What a network is made of ({@link NetworkBuilder}'s settings but the group size). Validated in build(). */
    @NotThreadSafe
    public static final class Builder extends NetworkBuilder<Builder> {
        private Variant variant = Variant.Y_400MF;

        private Builder() {}

        /** @param variant the model (Y_400MF, the default) */
        public Builder variant(Variant variant) {
            this.variant = variant;
            return this;
        }

        /**
         * @return the network, the caller's to close
         * @throws IllegalArgumentException naming the setting out of range (a group size: the model sets its own)
         */
        public RegNet build() {
            validate();
            Objects.requireNonNull(variant, "variant");
            requireOwnGroups("RegNet's groups are its own");
            return create(this);
        }
    }

    private static RegNet create(Builder b) {
        return ConvLayers.owning(b, (arena, kernels) -> create(b, arena, kernels));
    }

    private static RegNet create(Builder b, PooledArena arena, Kernels kernels) {
        ConvLayers.Factory make = new ConvLayers.Factory(b, kernels);
        Variant v = b.variant;
        ConvLayer stem = make.layer("stem", ConvLayers.conv(3, STEM_CHANNELS, 3, 2, 0), ConvActivation.RELU);
        List<MBConv> units = new ArrayList<>();
        int in = STEM_CHANNELS;
        for (int s = 0; s < v.widths.length; s++) {
            int out = v.widths[s];
            for (int i = 0; i < v.depths[s]; i++) {
                String p = "trunk_output.block" + (s + 1) + ".block" + (s + 1) + "-" + i + ".";
                int stride = i == 0 ? 2 : 1;
                ConvLayer proj = in != out || stride != 1
                        ? make.layer(p + "proj", ConvLayers.conv(in, out, 1, stride, 0), ConvActivation.IDENTITY)
                        : null;
                ConvLayer a = make.layer(p + "f.a", ConvLayers.conv(in, out, 1, 1, 0), ConvActivation.RELU);
                ConvLayer grouped =
                        make.layer(p + "f.b", ConvLayers.conv(out, out, 3, stride, v.groupWidth), ConvActivation.RELU);
                SqueezeExcitation se = new SqueezeExcitation(
                        p + "f.se",
                        out,
                        (int) Math.round(v.seRatio * in),
                        ConvActivation.RELU,
                        SqueezeExcitation.Scale.SIGMOID,
                        b.dataType,
                        make.nextSeed(),
                        kernels);
                ConvLayer c = make.layer(p + "f.c", ConvLayers.conv(out, out, 1, 1, 0), ConvActivation.IDENTITY);
                units.add(new MBConv(a, grouped, se, c, proj, true, kernels, 0));
                in = out;
            }
        }
        Linear fc = new Linear("fc", in, b.classes, b.dataType, make.nextSeed(), arena);
        return new RegNet(b, kernels, arena, stem, units, fc);
    }

    /** @return the model */
    public Variant variant() {
        return variant;
    }
}
