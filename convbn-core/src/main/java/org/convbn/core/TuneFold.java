package org.convbn.core;

/**
 * What TUNE keeps of its fold between forward and backward. Both give bit-identical results: the backward needs
 * W' = s * W for the input gradient, and recomputing it from the unchanged W and s reproduces the forward's.
 * {@link #RECOMPUTE} is the default: it keeps what DEPLOY keeps, and kernels that reorder the weight for their
 * convolution anyway apply s in that reorder, so it costs no pass of its own (docs/benchmarks.md).
 */
public enum TuneFold {
    /** Keep W', b' and s (as PyTorch's autograd does): one weight-sized copy per block held across the step. */
    KEEP,
    /**
     * Keep only b' and s and recompute W' in the backward (the default): one weight-sized copy less held (about 94 MB
     * for ResNet-50 in float32) at the cost of one weight-sized multiply, which the oneDNN kernels fuse into the weight
     * reorder their convolution needs anyway.
     */
    RECOMPUTE
}
