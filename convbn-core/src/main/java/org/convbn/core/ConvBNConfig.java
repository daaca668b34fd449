package org.convbn.core;

/**
 * Immutable configuration of a ConvBN block: a conv followed by a BatchNorm over its output channels.
 *
 * @param conv the convolution
 * @param bn the BatchNorm; its channel count equals the conv's output channels
 * @param keepUnfolded whether folding into DEPLOY keeps gamma, beta and the running statistics, so that the
 *                     block may leave DEPLOY again (see {@link ModeTransitions})
 * @param tuneFold what TUNE keeps of its fold for the backward
 */
public record ConvBNConfig(ConvConfig conv, BatchNormConfig bn, boolean keepUnfolded, TuneFold tuneFold) {

    /** A config whose TUNE recomputes its folded weight ({@link TuneFold#RECOMPUTE}, the default). */
    public ConvBNConfig(ConvConfig conv, BatchNormConfig bn, boolean keepUnfolded) {
        this(conv, bn, keepUnfolded, TuneFold.RECOMPUTE);
    }

    public ConvBNConfig {
        if (tuneFold == null) {
            throw new NullPointerException("tuneFold: expected KEEP or RECOMPUTE, got null");
        }
        if (conv == null) {
            throw new NullPointerException("conv: expected a ConvConfig, got null");
        }
        if (bn == null) {
            throw new NullPointerException("bn: expected a BatchNormConfig, got null");
        }
        if (bn.channels() != conv.outChannels()) {
            throw new IllegalArgumentException("bn.channels: expected conv.outChannels=" + conv.outChannels()
                    + ", got " + bn.channels());
        }
    }

    /** @return a block config with BN defaults (eps 1e-5, momentum 0.1, affine) that keeps unfolded tensors */
    public static ConvBNConfig of(ConvConfig conv) {
        return new ConvBNConfig(conv, BatchNormConfig.of(conv.outChannels()), true);
    }

    /** @return a copy with another BN configuration */
    public ConvBNConfig withBn(BatchNormConfig newBn) {
        return new ConvBNConfig(conv, newBn, keepUnfolded, tuneFold);
    }

    /** @return a copy that does or does not keep unfolded tensors when folding */
    public ConvBNConfig withKeepUnfolded(boolean keep) {
        return new ConvBNConfig(conv, bn, keep, tuneFold);
    }

    /** @return a copy whose TUNE keeps or recomputes its folded weight */
    public ConvBNConfig withTuneFold(TuneFold newTuneFold) {
        return new ConvBNConfig(conv, bn, keepUnfolded, newTuneFold);
    }

    /** @return the number of output channels O */
    public int channels() {
        return conv.outChannels();
    }
}
