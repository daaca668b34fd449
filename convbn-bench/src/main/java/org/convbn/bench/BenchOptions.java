package org.convbn.bench;

import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The network, input shape and step-count options that {@code report}, {@code profile} and {@code measure} share, with
 * their checks.
 */
final class BenchOptions {
    @Option(
            names = "--model",
            description = "${COMPLETION-CANDIDATES}: the zoo under torchvision's names, and "
                    + "resnet50_g16 (3x3 convs in groups of 16 input channels), efficientnet_b0_g16 (group convs of 16 in "
                    + "place of the depthwise convs, expansion 4), efficientnet_b0_proxy and efficientnet_b0_g16_proxy "
                    + "(GroupNorm and proxy-normalised activations in place of BN: one function in every mode) (default: "
                    + "${DEFAULT-VALUE})")
    Model model = Model.RESNET50;

    @Mixin
    InputShape shape;

    @Option(names = "--steps", description = "measured steps per mode (default: ${DEFAULT-VALUE})")
    int steps = 5;

    @Option(names = "--warmup", description = "unmeasured steps first (default: ${DEFAULT-VALUE})")
    int warmup = 2;

    /** @throws IllegalArgumentException naming the option out of range */
    void validate() {
        shape.validate();
        if (steps < 1) {
            throw new IllegalArgumentException("--steps: expected >= 1, got " + steps);
        }
        if (warmup < 0) {
            throw new IllegalArgumentException("--warmup: expected >= 0, got " + warmup);
        }
    }
}
