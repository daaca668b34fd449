package org.convbn.bench.jmh;

import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;

/**
 * Real ConvBN layers of ResNet-50 at 224x224 input (torchvision's v1.5 layout), as {@code @Param} values.
 */
public enum LayerShape {
    /** conv1: 7x7/2, 3 -> 64, input 224. */
    STEM(3, 64, 7, 2, 224),
    /** layer1 3x3, 64 -> 64, input 56. */
    LAYER1_3X3(64, 64, 3, 1, 56),
    /** layer2.0 3x3/2, 128 -> 128, input 56. */
    LAYER2_3X3_S2(128, 128, 3, 2, 56),
    /** layer3 1x1, 256 -> 1024, input 14. */
    LAYER3_1X1(256, 1024, 1, 1, 14),
    /** layer4 1x1, 2048 -> 512, input 7. */
    LAYER4_1X1(2048, 512, 1, 1, 7);

    final int in;
    final int out;
    final int kernel;
    final int stride;
    final int resolution;

    LayerShape(int in, int out, int kernel, int stride, int resolution) {
        this.in = in;
        this.out = out;
        this.kernel = kernel;
        this.stride = stride;
        this.resolution = resolution;
    }

    /** @return the block config: no conv bias, BN defaults */
    ConvBNConfig config() {
        return ConvBNConfig.of(ConvConfig.builder(in, out)
                .kernel(kernel)
                .stride(stride)
                .padding(kernel / 2)
                .bias(false)
                .build());
    }

    /** @return the input shape at the given batch */
    long[] inputShape(int batch) {
        return new long[] {batch, in, resolution, resolution};
    }
}
