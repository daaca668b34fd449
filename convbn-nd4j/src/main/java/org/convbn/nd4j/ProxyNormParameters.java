package org.convbn.nd4j;

import java.util.LinkedHashMap;
import java.util.Map;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The tensors of a {@link ConvProxyNormBlock}, held by reference (an optimiser updates them in place).
 *
 * @param weight W {@code [O, C/groups, kH, kW]}
 * @param bias b {@code [O]}, or null when the conv has no bias
 * @param gamma PN scale {@code [O]}
 * @param beta PN shift {@code [O]}
 * @param betaTilde the proxy's mean shift {@code [O]}
 * @param gammaTilde the proxy's scale offset {@code [O]} (the proxy's standard deviation is 1 + gammaTilde)
 */
@NotThreadSafe
public record ProxyNormParameters(
        INDArray weight, INDArray bias, INDArray gamma, INDArray beta, INDArray betaTilde, INDArray gammaTilde) {
    public static final String WEIGHT = "conv.weight";
    public static final String BIAS = "conv.bias";
    public static final String GAMMA = "pn.gamma";
    public static final String BETA = "pn.beta";
    public static final String BETA_TILDE = "pn.beta_tilde";
    public static final String GAMMA_TILDE = "pn.gamma_tilde";

    /**
     * W (and b) as {@link ConvBNParameters#initialize}; gamma 1, beta 0, betaTilde 0, gammaTilde 0: the proxy then
     * is phi of a standard normal variable, what GroupNorm's output is close to.
     */
    public static ProxyNormParameters initialize(ConvConfig conv, DataType type, long seed) {
        ConvBNParameters p = ConvBNParameters.initialize(ConvBNConfig.of(conv), type, seed);
        int o = conv.outChannels();
        return new ProxyNormParameters(
                p.weight(),
                p.bias(),
                Nd4j.ones(type, o),
                Nd4j.zeros(type, o),
                Nd4j.zeros(type, o),
                Nd4j.zeros(type, o));
    }

    /**
     * @return the shared data type
     * @throws IllegalArgumentException naming the first tensor whose presence, shape or type does not fit
     */
    public DataType validate(ConvConfig conv) {
        if (weight == null) {
            throw new IllegalArgumentException(WEIGHT + ": expected an array, got null");
        }
        DataType type = weight.dataType();
        ConvBNParameters.requireFloatingType(type);
        Tensors.requireShape(WEIGHT, weight, conv.weightShape());
        if (conv.bias() != (bias != null)) {
            throw new IllegalArgumentException(BIAS + ": expected " + (conv.bias() ? "an array" : "null")
                    + " for this conv, got " + (bias == null ? "null" : "an array"));
        }
        for (Map.Entry<String, INDArray> e : trainable().entrySet()) {
            if (!e.getKey().equals(WEIGHT)) {
                Tensors.requireShape(e.getKey(), e.getValue(), conv.outChannels());
            }
            Tensors.requireType(e.getKey(), e.getValue(), type);
        }
        return type;
    }

    /** @return every tensor by name, live */
    public Map<String, INDArray> trainable() {
        Map<String, INDArray> m = new LinkedHashMap<>();
        m.put(WEIGHT, weight);
        if (bias != null) {
            m.put(BIAS, bias);
        }
        m.put(GAMMA, gamma);
        m.put(BETA, beta);
        m.put(BETA_TILDE, betaTilde);
        m.put(GAMMA_TILDE, gammaTilde);
        return m;
    }
}
