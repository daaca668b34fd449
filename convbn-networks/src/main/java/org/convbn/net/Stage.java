package org.convbn.net;

import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;

/** A run of residual units at one resolution: what a {@link ResNet} chains between stem and head. */
interface Stage {

    /**
     * @param x not modified, kept as needed until backward
     * @return the stage output, owned by the stage until its backward or {@link #clearSaved()}
     */
    INDArray forward(INDArray x);

    /**
     * @param g dL/d(output), taken over by the stage (it reuses or gives back its memory)
     * @param sink receives the blocks' parameter gradients
     * @return dL/dx, a new array owned by the caller
     */
    INDArray backward(INDArray g, GradientSink sink);

    /**
     * As {@link #backward}, for a stage whose input needs no gradient (the first trainable stage after a frozen
     * prefix): its first unit computes no dL/dx, so its first convs skip their backward-data pass.
     *
     * @param g dL/d(output), taken over by the stage
     * @param sink receives the blocks' parameter gradients
     */
    void backwardWithoutInputGradient(INDArray g, GradientSink sink);

    /** @return the stage's blocks in forward order */
    List<NamedBlock> blocks();

    /** @return the stage's residual units in forward order */
    List<ResidualUnit> units();

    /** Drops and gives back what the last forward kept for a backward (after an inference-only forward). */
    void clearSaved();

    /** Adds the activation-sized arrays the stage itself keeps between forward and backward. */
    void collectRetained(List<INDArray> into);
}
