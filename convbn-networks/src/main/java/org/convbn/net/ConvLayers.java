package org.convbn.net;

import java.util.function.BiFunction;
import net.jcip.annotations.NotThreadSafe;
import net.jcip.annotations.ThreadSafe;
import org.convbn.core.BatchNormConfig;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.convbn.nd4j.ConvBNBlock;
import org.convbn.nd4j.ConvBNParameters;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.PooledArena;

/**
 * What every network's builder makes its layers from: convs as torchvision configures them, ConvBN blocks and
 * layers with PyTorch's default initialisation, and the arena and kernels a network owns.
 */
@ThreadSafe
final class ConvLayers {
    private ConvLayers() {}

    /**
     * @param groupSize 0 for a dense conv, else input channels per group (1: depthwise)
     * @return a bias-free conv with padding {@code kernel / 2}
     */
    static ConvConfig conv(int in, int out, int kernel, int stride, int groupSize) {
        ConvConfig.Builder c = ConvConfig.builder(in, out)
                .kernel(kernel)
                .stride(stride)
                .padding(kernel / 2)
                .bias(false);
        return (groupSize > 0 ? c.groupSize(groupSize) : c).build();
    }

    /**
     * Builds a network on a new pooled arena and the fastest kernels for the builder's data type and precision on
     * it, and closes both if the build fails (the network owns them otherwise).
     */
    static <N extends Network> N owning(NetworkBuilder<?> settings, BiFunction<PooledArena, Kernels, N> build) {
        PooledArena arena = Arena.pooled();
        Kernels kernels;
        try {
            kernels = Kernels.create(settings.dataType, settings.precision, arena);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
        try {
            return build.apply(arena, kernels);
        } catch (RuntimeException e) {
            kernels.close();
            arena.close();
            throw e;
        }
    }

    /**
     * Makes a network's ConvBN blocks and layers in the builder's data type, mode and TUNE fold, with one BN eps and
     * momentum, each initialised from the next seed of the builder's (so a network's tensors depend on its seed and
     * their order only).
     */
    @NotThreadSafe
    static final class Factory {
        private final NetworkBuilder<?> settings;
        private final Kernels kernels;
        private final double eps;
        private final double momentum;
        private long nextSeed;

        /** BN with PyTorch's defaults: eps 1e-5, momentum 0.1. */
        Factory(NetworkBuilder<?> settings, Kernels kernels) {
            this(settings, kernels, BatchNormConfig.DEFAULT_EPS, BatchNormConfig.DEFAULT_MOMENTUM);
        }

        Factory(NetworkBuilder<?> settings, Kernels kernels, double eps, double momentum) {
            this.settings = settings;
            this.kernels = kernels;
            this.eps = eps;
            this.momentum = momentum;
            this.nextSeed = settings.seed;
        }

        /** @return the next seed, for a layer that is not a block (a gate, a linear layer) */
        long nextSeed() {
            return nextSeed++;
        }

        /** @return a ConvBN block under {@code convName} and {@code bnName} */
        NamedBlock block(String convName, String bnName, ConvConfig conv) {
            ConvBNConfig config = new ConvBNConfig(
                    conv, new BatchNormConfig(conv.outChannels(), eps, momentum, true), true, settings.tuneFold);
            return new NamedBlock(
                    convName,
                    bnName,
                    ConvBNBlock.of(
                            config,
                            ConvBNParameters.initialize(config, settings.dataType, nextSeed()),
                            settings.mode,
                            kernels));
        }

        /** @return the block {@code name.0} (conv) and {@code name.1} (BN) and its activation */
        BatchNormLayer layer(String name, ConvConfig conv, ConvActivation activation) {
            return layer(name + ".0", name + ".1", conv, activation);
        }

        /** @return the block under {@code convName} and {@code bnName} and its activation */
        BatchNormLayer layer(String convName, String bnName, ConvConfig conv, ConvActivation activation) {
            return new BatchNormLayer(block(convName, bnName, conv), activation);
        }
    }
}
