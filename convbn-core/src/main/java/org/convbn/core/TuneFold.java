package org.convbn.core;

/**
 * What TUNE keeps of its fold between forward and backward. Both give bit-identical results: the backward needs
 * W' = s * W for the input gradient, and recomputing it from the unchanged W and s reproduces the forward's.
 */
public enum TuneFold {
    /** Keep W', b' and s (the mode table's choice, as PyTorch's autograd does): one weight-sized copy per block. */
    KEEP,
    /**
     * Keep only b' and s and recompute W' in the backward: one weight-sized multiply more per block and step, one
     * weight-sized copy less held (about 94 MB for ResNet-50 in float32).
     */
    RECOMPUTE
}
