package org.convbn.bench;

import java.util.Locale;
import java.util.Optional;
import org.convbn.core.Mode;
import org.convbn.core.Precision;
import org.convbn.core.TuneFold;
import org.convbn.net.EfficientNet;
import org.convbn.net.MobileNetV2;
import org.convbn.net.MobileNetV3;
import org.convbn.net.Network;
import org.convbn.net.RegNet;
import org.convbn.net.ResNet;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The networks the bench can run, by their command-line names: every network of the zoo
 * ({@link org.convbn.net.Zoo}) under torchvision's name, and the variants torchvision does not have (grouped convs,
 * proxy normalisation).
 */
public enum Model {
    /** ResNet-18: 20 ConvBN blocks, a small network for quick runs. */
    RESNET18(Family.RESNET, "resnet18", 0, false),
    /** ResNet-34: 36 ConvBN blocks. */
    RESNET34(Family.RESNET, "resnet34", 0, false),
    /** ResNet-50: the 53 ConvBN blocks of torchvision's ResNet-50. */
    RESNET50(Family.RESNET, "resnet50", 0, false),
    /** ResNet-101: 104 ConvBN blocks. */
    RESNET101(Family.RESNET, "resnet101", 0, false),
    /** ResNet-152: 155 ConvBN blocks. */
    RESNET152(Family.RESNET, "resnet152", 0, false),
    /** ResNeXt-50 32x4d: ResNet-50 with grouped 3x3 convs (32 groups). */
    RESNEXT50_32X4D(Family.RESNET, "resnext50_32x4d", 0, false),
    /** Wide ResNet-50-2: ResNet-50 with bottlenecks twice as wide. */
    WIDE_RESNET50_2(Family.RESNET, "wide_resnet50_2", 0, false),
    /** ResNet-50 with every 3x3 conv after the stem grouped, 16 input channels per group. */
    RESNET50_G16(Family.RESNET, "resnet50", 16, false),
    /** torchvision's MobileNetV2: 52 ConvBN blocks, depthwise convs, ReLU6. */
    MOBILENET_V2(Family.MOBILENET_V2, "mobilenet_v2", 0, false),
    /** torchvision's MobileNetV3-Large: 46 ConvBN blocks, hardswish, gates with hardsigmoid. */
    MOBILENET_V3_LARGE(Family.MOBILENET_V3, "mobilenet_v3_large", 0, false),
    /** torchvision's EfficientNet-B0: 49 ConvBN blocks, depthwise convs, squeeze-and-excitation. */
    EFFICIENTNET_B0(Family.EFFICIENTNET, "efficientnet_b0", 0, false),
    /** EfficientNet-B1. */
    EFFICIENTNET_B1(Family.EFFICIENTNET, "efficientnet_b1", 0, false),
    /** EfficientNet-B2. */
    EFFICIENTNET_B2(Family.EFFICIENTNET, "efficientnet_b2", 0, false),
    /** EfficientNet-B3. */
    EFFICIENTNET_B3(Family.EFFICIENTNET, "efficientnet_b3", 0, false),
    /** EfficientNet-B0 with group convs of 16 input channels per group and expansion 4 ({@link EfficientNet}). */
    EFFICIENTNET_B0_G16(Family.EFFICIENTNET, "efficientnet_b0", 16, false),
    /** EfficientNet-B0 with GroupNorm and proxy-normalised activations in place of BN (no modes). */
    EFFICIENTNET_B0_PROXY(Family.EFFICIENTNET, "efficientnet_b0", 0, true),
    /** Both: group convs of 16 with expansion 4, GroupNorm and proxy-normalised activations. */
    EFFICIENTNET_B0_G16_PROXY(Family.EFFICIENTNET, "efficientnet_b0", 16, true),
    /** torchvision's RegNetY-400MF: 53 ConvBN blocks, grouped convs, gates, projection shortcuts. */
    REGNET_Y_400MF(Family.REGNET, "regnet_y_400mf", 0, false);

    /** The group size of the grouped variants. */
    public static final int PAPER_GROUP_SIZE = 16;

    private enum Family {
        RESNET,
        MOBILENET_V2,
        MOBILENET_V3,
        EFFICIENTNET,
        REGNET
    }

    private final Family family;
    private final String base;
    private final int groupSize;
    private final boolean proxy;

    Model(Family family, String base, int groupSize, boolean proxy) {
        this.family = family;
        this.base = base;
        this.groupSize = groupSize;
        this.proxy = proxy;
    }

    /** @return whether this is a ResNet (the only family with reversible stages and DL4J variants) */
    public boolean isResNet() {
        return family == Family.RESNET;
    }

    /** @return whether its blocks are GroupNorm with proxy-normalised activations instead of ConvBN */
    public boolean isProxy() {
        return proxy;
    }

    /** @return whether a group size can replace its convs' (ResNets' 3x3 convs, EfficientNets' depthwise convs) */
    public boolean groupable() {
        return family == Family.RESNET || family == Family.EFFICIENTNET;
    }

    /** @return input channels per group of its grouped convs, 0 for the dense (or depthwise) original */
    public int groupSize() {
        return groupSize;
    }

    /** @return torchvision's builder name, or empty for a variant torchvision does not have (no PyTorch peer) */
    public Optional<String> torchvisionName() {
        return groupSize == 0 && !proxy ? Optional.of(base) : Optional.empty();
    }

    /** @return the command-line name, e.g. "resnet18", "efficientnet_b0_g16" */
    public String cliName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * @param groupSize input channels per group of the grouped convs (0: the architecture's own convs)
     * @param reversible reversible stages (ResNets only)
     * @return a new network in TRAIN with PyTorch's default initialisation (dropout and stochastic depth on), the
     *         caller's to close
     * @throws IllegalArgumentException for reversible stages on a network that is not a ResNet, a group size on
     *                                  MobileNet or RegNet
     */
    public Network build(
            int classes,
            DataType type,
            long seed,
            TuneFold tuneFold,
            boolean reversible,
            double reversibleMinBeta,
            int groupSize) {
        return build(classes, type, Precision.FULL, seed, tuneFold, reversible, reversibleMinBeta, groupSize);
    }

    /**
     * As {@link #build(int, DataType, long, TuneFold, boolean, double, int)} with feature maps stored as
     * {@code precision} says.
     *
     * @throws UnsupportedOperationException for a precision no kernels here compute in
     */
    public Network build(
            int classes,
            DataType type,
            Precision precision,
            long seed,
            TuneFold tuneFold,
            boolean reversible,
            double reversibleMinBeta,
            int groupSize) {
        if (reversible && family != Family.RESNET) {
            throw new IllegalArgumentException("reversible: expected a ResNet model, got " + cliName());
        }
        return switch (family) {
            case RESNET -> {
                ResNet.Variant v = ResNet.Variant.valueOf(base.toUpperCase(Locale.ROOT));
                ResNet.Builder b = ResNet.builder(v)
                        .classes(classes)
                        .dataType(type)
                        .precision(precision)
                        .seed(seed)
                        .mode(Mode.TRAIN)
                        .tuneFold(tuneFold)
                        .groupSize(groupSize);
                yield (reversible ? b.reversible(reversibleMinBeta) : b).build();
            }
            case MOBILENET_V2 ->
                MobileNetV2.builder()
                        .classes(classes)
                        .dataType(type)
                        .precision(precision)
                        .seed(seed)
                        .mode(Mode.TRAIN)
                        .tuneFold(tuneFold)
                        .groupSize(groupSize)
                        .build();
            case MOBILENET_V3 ->
                MobileNetV3.builder()
                        .classes(classes)
                        .dataType(type)
                        .precision(precision)
                        .seed(seed)
                        .mode(Mode.TRAIN)
                        .tuneFold(tuneFold)
                        .groupSize(groupSize)
                        .build();
            case REGNET ->
                RegNet.builder()
                        .classes(classes)
                        .dataType(type)
                        .precision(precision)
                        .seed(seed)
                        .mode(Mode.TRAIN)
                        .tuneFold(tuneFold)
                        .groupSize(groupSize)
                        .build();
            case EFFICIENTNET ->
                EfficientNet.builder()
                        .variant(EfficientNet.Variant.valueOf(
                                base.substring("efficientnet_".length()).toUpperCase(Locale.ROOT)))
                        .classes(classes)
                        .dataType(type)
                        .precision(precision)
                        .seed(seed)
                        .mode(Mode.TRAIN)
                        .tuneFold(tuneFold)
                        .groupSize(groupSize)
                        .normalization(
                                proxy
                                        ? EfficientNet.Normalization.GROUP_NORM_PROXY
                                        : EfficientNet.Normalization.BATCH_NORM)
                        .build();
        };
    }
}
