package org.convbn.nd4j;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import net.jcip.annotations.NotThreadSafe;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * What a block's backward returns. All arrays are new and owned by the caller.
 *
 * @param input dL/dX {@code [N, C, H, W]}
 * @param parameters dL/dp for each trainable tensor p, by {@link org.convbn.core.ParameterNames} name, in the
 *                   order of the block's {@code parameters()}
 */
@NotThreadSafe
public record BlockGradients(INDArray input, Map<String, INDArray> parameters) {

    public BlockGradients {
        parameters = Collections.unmodifiableMap(new LinkedHashMap<>(parameters));
    }

    /**
     * @param name a parameter name
     * @return its gradient
     * @throws IllegalArgumentException if this block has no trainable tensor of that name in the mode it ran
     */
    public INDArray parameter(String name) {
        INDArray g = parameters.get(name);
        if (g == null) {
            throw new IllegalArgumentException("name: expected one of " + parameters.keySet() + ", got " + name);
        }
        return g;
    }
}
