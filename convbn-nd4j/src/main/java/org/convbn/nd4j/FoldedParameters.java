package org.convbn.nd4j;

import java.util.LinkedHashMap;
import java.util.Map;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.ParameterNames;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * BN folded into the conv: {@code W' = s * W} (each output channel scaled), {@code b' = beta + s * (b - mean)},
 * {@code s = gamma / sqrt(var + eps)}. In DEPLOY these arrays are the block's live parameters.
 *
 * @param weight W' {@code [O, C/groups, kH, kW]}
 * @param bias b' {@code [O]} (present even when the conv had no bias: BN's shift lands here)
 * @param scale s {@code [O]}
 */
@NotThreadSafe
public record FoldedParameters(INDArray weight, INDArray bias, INDArray scale) {

    /** @return W' and b' by name; live references */
    public Map<String, INDArray> trainable() {
        Map<String, INDArray> m = new LinkedHashMap<>();
        m.put(ParameterNames.FOLDED_WEIGHT, weight);
        m.put(ParameterNames.FOLDED_BIAS, bias);
        return m;
    }
}
