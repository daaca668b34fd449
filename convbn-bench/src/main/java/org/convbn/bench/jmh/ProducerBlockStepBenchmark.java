package org.convbn.bench.jmh;

import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvTransposeConfig;
import org.convbn.core.LinearConfig;
import org.convbn.core.Mode;
import org.openjdk.jmh.annotations.Param;

/**
 * The step of {@link AbstractBlockStepBenchmark} for the layer kinds besides conv2d: a segmentation decoder's upsampling
 * ConvTranspose2d + BN and a classifier head's Linear + BatchNorm1d, per mode.
 */
public class ProducerBlockStepBenchmark extends AbstractBlockStepBenchmark {
    /** A block shape with its input. */
    public enum Kind {
        /** ConvTranspose2d 256 -> 128, 2x2 stride 2 (a U-Net / FPN upsampling step), on [8, 256, 28, 28]. */
        TRANSPOSED_2X2_S2(
                ConvBNConfig.of(ConvTransposeConfig.builder(256, 128)
                        .kernel(2)
                        .stride(2)
                        .bias(false)
                        .build()),
                new long[] {8, 256, 28, 28}),
        /** ConvTranspose2d 128 -> 128 in 8 groups, 3x3 stride 2, padding 1, output padding 1, on [8, 128, 28, 28]. */
        TRANSPOSED_3X3_G8(
                ConvBNConfig.of(ConvTransposeConfig.builder(128, 128)
                        .kernel(3)
                        .stride(2)
                        .padding(1)
                        .outputPadding(1)
                        .groups(8)
                        .bias(false)
                        .build()),
                new long[] {8, 128, 28, 28}),
        /** Linear 2048 -> 512 + BatchNorm1d (a ResNet-50 feature head), on [256, 2048]. */
        LINEAR_2048_512(ConvBNConfig.of(new LinearConfig(2048, 512, true)), new long[] {256, 2048});

        final ConvBNConfig config;
        final long[] input;

        Kind(ConvBNConfig config, long[] input) {
            this.config = config;
            this.input = input;
        }
    }

    @Param({"EVAL", "DEPLOY", "TUNE"})
    public Mode mode;

    @Param({"TRANSPOSED_2X2_S2", "TRANSPOSED_3X3_G8", "LINEAR_2048_512"})
    public Kind kind;

    @Override
    protected ConvBNConfig config() {
        return kind.config;
    }

    @Override
    protected Mode mode() {
        return mode;
    }

    @Override
    protected long[] inputShape() {
        return kind.input;
    }
}
