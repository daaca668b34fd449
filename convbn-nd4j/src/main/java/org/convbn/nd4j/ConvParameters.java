package org.convbn.nd4j;

import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.ParameterNames;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A convolution's tensors on their own. References, not copies: the arrays are a block's live state.
 *
 * @param weight W {@code [O, C/groups, kH, kW]}, not null
 * @param bias b {@code [O]}, or null when the conv has no bias (as its {@link org.convbn.core.ConvConfig} says)
 */
@NotThreadSafe
public record ConvParameters(INDArray weight, INDArray bias) {
    public ConvParameters {
        if (weight == null) {
            throw new IllegalArgumentException(ParameterNames.CONV_WEIGHT + ": expected an array, " + "got null");
        }
    }
}
