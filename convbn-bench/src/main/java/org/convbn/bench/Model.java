package org.convbn.bench;

import java.util.Locale;
import java.util.Optional;

import org.convbn.core.Mode;
import org.convbn.core.TuneFold;
import org.convbn.net.EfficientNet;
import org.convbn.net.Network;
import org.convbn.net.ResNet;
import org.nd4j.linalg.api.buffer.DataType;

/** The networks the bench can run, by their command-line names. */
public enum Model {
    /** ResNet-18 shapes: 20 ConvBN blocks, a small network for quick runs. */
    RESNET18(ResNet.Depth.RESNET18, 0, "resnet18"),
    /** ResNet-50 shapes: the 53 ConvBN blocks of torchvision's ResNet-50. */
    RESNET50(ResNet.Depth.RESNET50, 0, "resnet50"),
    /** ResNet-50 with every 3x3 conv after the stem grouped, 16 input channels per group. */
    RESNET50_G16(ResNet.Depth.RESNET50, 16, null),
    /** torchvision's EfficientNet-B0: 49 ConvBN blocks, depthwise convs, squeeze-and-excitation. */
    EFFICIENTNET_B0(null, 0, "efficientnet_b0"),
    /** EfficientNet-B0 with group convs of 16 input channels per group and expansion 4 ({@link EfficientNet}). */
    EFFICIENTNET_B0_G16(null, 16, null),
    /** EfficientNet-B0 with GroupNorm and proxy-normalised activations in place of BN (no modes). */
    EFFICIENTNET_B0_PROXY(null, 0, null),
    /** Both: group convs of 16 with expansion 4, GroupNorm and proxy-normalised activations. */
    EFFICIENTNET_B0_G16_PROXY(null, 16, null);

    /** The group size of the grouped variants. */
    public static final int PAPER_GROUP_SIZE = 16;

    private final ResNet.Depth depth;
    private final int groupSize;
    private final String torchvisionName;

    Model(ResNet.Depth depth, int groupSize, String torchvisionName) {
        this.depth = depth;
        this.groupSize = groupSize;
        this.torchvisionName = torchvisionName;
    }

    /** @return whether this is a ResNet (the only family with reversible stages, DL4J and finetune variants) */
    public boolean isResNet() {
        return depth != null;
    }

    /** @return the ResNet architecture, or empty for an EfficientNet */
    public Optional<ResNet.Depth> depth() {
        return Optional.ofNullable(depth);
    }

    /** @return input channels per group of its grouped convs, 0 for the dense (or depthwise) original */
    public int groupSize() {
        return groupSize;
    }

    /** @return torchvision's builder name, or empty for a variant torchvision does not have (no PyTorch peer) */
    public Optional<String> torchvisionName() {
        return Optional.ofNullable(torchvisionName);
    }

    /** @return the command-line name, e.g. "resnet18", "efficientnet_b0_g16" */
    public String cliName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * @param groupSize input channels per group of the grouped convs (0: the architecture's own convs)
     * @param reversible reversible stages (ResNets only)
     * @return a new network in TRAIN with PyTorch's default initialisation, the caller's to close
     * @throws IllegalArgumentException for reversible stages on an EfficientNet
     */
    public Network build(int classes, DataType type, long seed, TuneFold tuneFold, boolean reversible,
                         double reversibleMinBeta, int groupSize) {
        if (depth != null) {
            ResNet.Builder b = ResNet.builder(depth).classes(classes).dataType(type).seed(seed).mode(Mode.TRAIN)
                    .tuneFold(tuneFold).groupSize(groupSize);
            return (reversible ? b.reversible(reversibleMinBeta) : b).build();
        }
        if (reversible) {
            throw new IllegalArgumentException("reversible: expected a ResNet model, got " + cliName());
        }
        return EfficientNet.builder().classes(classes).dataType(type).seed(seed).mode(Mode.TRAIN).tuneFold(tuneFold)
                .groupSize(groupSize).normalization(name().endsWith("_PROXY")
                        ? EfficientNet.Normalization.GROUP_NORM_PROXY : EfficientNet.Normalization.BATCH_NORM).build();
    }
}
