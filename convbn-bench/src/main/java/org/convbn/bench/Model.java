package org.convbn.bench;

import org.convbn.net.ResNet;

/** The networks the bench can run, by their command-line names. */
public enum Model {
    /** ResNet-18 shapes: 20 ConvBN blocks, a small network for quick runs. */
    RESNET18(ResNet.Depth.RESNET18),
    /** ResNet-50 shapes: the 53 ConvBN blocks of torchvision's ResNet-50. */
    RESNET50(ResNet.Depth.RESNET50);

    private final ResNet.Depth depth;

    Model(ResNet.Depth depth) {
        this.depth = depth;
    }

    /** @return the architecture */
    public ResNet.Depth depth() {
        return depth;
    }

    /** @return the command-line name, e.g. "resnet18" */
    public String cliName() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
