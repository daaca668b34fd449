package org.convbn.net;

import org.convbn.nd4j.kernel.Kernels;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The activation after a conv layer's BN, computed on the network's {@link Kernels}. ReLU and ReLU6 run in place and
 * their backward reads the output (which the layer's caller keeps as the next layer's input); SiLU and hardswish make
 * a new array and their backward reads the input, which the layer keeps.
 */
public enum ConvActivation {
    /** None: a projection. */
    IDENTITY,
    /** {@code max(z, 0)}. */
    RELU,
    /** {@code min(max(z, 0), 6)}: MobileNetV2's. */
    RELU6,
    /** {@code z sigmoid(z)}: EfficientNet's. */
    SILU,
    /** {@code z relu6(z + 3) / 6}: MobileNetV3's. */
    HARDSWISH;

    /** @return whether the backward reads the forward's output (the activation ran in place), else its input */
    boolean readsOutput() {
        return this == RELU || this == RELU6;
    }

    /**
     * @param z the pre-activation; modified (it becomes the output) when {@link #readsOutput()}, else not
     * @return the output: {@code z} itself for IDENTITY, RELU, RELU6, else a new array from the kernels' arena
     */
    INDArray forward(Kernels kernels, INDArray z) {
        switch (this) {
            case RELU -> kernels.reluInPlace(z);
            case RELU6 -> kernels.relu6InPlace(z);
            case SILU -> {
                return kernels.silu(z);
            }
            case HARDSWISH -> {
                return kernels.hardswish(z);
            }
            case IDENTITY -> {}
        }
        return z;
    }

    /**
     * @param saved the forward's output when {@link #readsOutput()}, else its input; not modified
     * @param g modified: dL/d(output) becomes dL/d(input)
     */
    void backwardInPlace(Kernels kernels, INDArray saved, INDArray g) {
        switch (this) {
            case RELU -> kernels.reluBackwardInPlace(saved, g);
            case RELU6 -> kernels.relu6BackwardInPlace(saved, g);
            case SILU -> kernels.siluBackwardInPlace(saved, g);
            case HARDSWISH -> kernels.hardswishBackwardInPlace(saved, g);
            case IDENTITY -> {}
        }
    }
}
