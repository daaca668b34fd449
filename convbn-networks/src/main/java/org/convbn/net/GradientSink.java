package org.convbn.net;

import java.util.Map;
import net.jcip.annotations.NotThreadSafe;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Receives each parameter gradient of a network's backward as soon as it exists, in backward order (the head
 * first, the stem last): an optimiser that updates the parameter at once and frees the gradient keeps no
 * gradient alive beyond its block's.
 */
@FunctionalInterface
@NotThreadSafe
public interface GradientSink {
    /**
     * @param name the parameter's network name (torchvision's, e.g. {@code layer1.0.conv1.weight})
     * @param parameter the live parameter array (its block is done with it for this step: updating it in place is
     *                  safe)
     * @param gradient dL/d(parameter), a new array from the network's arena, now owned by the sink
     */
    void accept(String name, INDArray parameter, INDArray gradient);

    /**
     * @param into modified: receives each gradient under its name
     * @return a sink that collects the gradients (the map's owner then owns them)
     */
    static GradientSink into(Map<String, INDArray> into) {
        return (name, parameter, gradient) -> into.put(name, gradient);
    }
}
