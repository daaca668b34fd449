package org.convbn.core;

import net.jcip.annotations.Immutable;

/**
 * Immutable configuration of a ConvBN block: a linear producer (a conv, a transposed conv or a fully connected
 * layer, see {@link ProducerConfig}) followed by a BatchNorm over its output channels.
 *
 * @param producer the layer BN follows
 * @param bn the BatchNorm; its channel count equals the producer's output channels
 * @param keepUnfolded whether folding into DEPLOY keeps gamma, beta and the running statistics, so that the
 *                     block may leave DEPLOY again (see {@link ModeTransitions})
 * @param tuneFold what TUNE keeps of its fold for the backward
 */
@Immutable
public record ConvBNConfig(ProducerConfig producer, BatchNormConfig bn, boolean keepUnfolded, TuneFold tuneFold) {

    /** A config whose TUNE recomputes its folded weight ({@link TuneFold#RECOMPUTE}, the default). */
    public ConvBNConfig(ProducerConfig producer, BatchNormConfig bn, boolean keepUnfolded) {
        this(producer, bn, keepUnfolded, TuneFold.RECOMPUTE);
    }

    public ConvBNConfig {
        if (tuneFold == null) {
            throw new NullPointerException("tuneFold: expected KEEP or RECOMPUTE, got null");
        }
        if (producer == null) {
            throw new NullPointerException(
                    "producer: expected a ConvConfig, ConvTransposeConfig or LinearConfig, " + "got null");
        }
        if (bn == null) {
            throw new NullPointerException("bn: expected a BatchNormConfig, got null");
        }
        // The precondition a fold needs: BN normalises exactly the producer's output channels (features).
        if (bn.channels() != producer.outChannels()) {
            throw new IllegalArgumentException("bn.channels: expected " + producer.prefix() + " output "
                    + (producer instanceof LinearConfig ? "features" : "channels") + " = " + producer.outChannels()
                    + " (BN must normalise the " + producer.kind() + " output), got " + bn.channels());
        }
    }

    /** @return a block config with BN defaults (eps 1e-5, momentum 0.1, affine) that keeps unfolded tensors */
    public static ConvBNConfig of(ProducerConfig producer) {
        return new ConvBNConfig(producer, BatchNormConfig.of(producer.outChannels()), true);
    }

    /**
     * @return the producer as a 2-D convolution, for the code that only handles those (networks, DL4J layers)
     * @throws IllegalStateException when the producer is another kind
     */
    public ConvConfig conv() {
        if (producer instanceof ConvConfig c) {
            return c;
        }
        throw new IllegalStateException("producer: expected a conv2d here, got " + producer.kind());
    }

    /** @return a copy with another BN configuration */
    public ConvBNConfig withBn(BatchNormConfig newBn) {
        return new ConvBNConfig(producer, newBn, keepUnfolded, tuneFold);
    }

    /** @return a copy that does or does not keep unfolded tensors when folding */
    public ConvBNConfig withKeepUnfolded(boolean keep) {
        return new ConvBNConfig(producer, bn, keep, tuneFold);
    }

    /** @return a copy whose TUNE keeps or recomputes its folded weight */
    public ConvBNConfig withTuneFold(TuneFold newTuneFold) {
        return new ConvBNConfig(producer, bn, keepUnfolded, newTuneFold);
    }

    /** @return the number of output channels O */
    public int channels() {
        return producer.outChannels();
    }
}
