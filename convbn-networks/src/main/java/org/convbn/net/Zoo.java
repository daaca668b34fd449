package org.convbn.net;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import net.jcip.annotations.ThreadSafe;
import org.convbn.core.Mode;
import org.convbn.core.Precision;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Every network convbn builds, by torchvision's builder name: one lookup for code and commands. A network from
 * {@link #create} has torchvision's module names and shapes (so {@link StateDict#load} takes torchvision's
 * state_dict strictly), PyTorch's default initialisation, and is in EVAL with dropout and stochastic depth off;
 * {@code setMode}, {@code setStochastic} and the builders ({@link ResNet#builder}, {@link MobileNetV2#builder},
 * {@link MobileNetV3#builder}, {@link EfficientNet#builder}, {@link RegNet#builder}) give the rest.
 */
@ThreadSafe
public final class Zoo {
    private Zoo() {}

    /** A builder of one model: classes, data type, precision, seed to a network in EVAL. */
    @FunctionalInterface
    private interface Factory {
        Network create(int classes, DataType dataType, Precision precision, long seed);
    }

    private static final Map<String, Factory> MODELS = models();

    private static Map<String, Factory> models() {
        Map<String, Factory> m = new LinkedHashMap<>();
        for (ResNet.Variant v : ResNet.Variant.values()) {
            m.put(v.torchvisionName(), (classes, type, precision, seed) -> ResNet.builder(v)
                    .classes(classes)
                    .dataType(type)
                    .precision(precision)
                    .seed(seed)
                    .mode(Mode.EVAL)
                    .build());
        }
        m.put(
                "mobilenet_v2",
                (classes, type, precision, seed) -> off(MobileNetV2.builder()
                        .classes(classes)
                        .dataType(type)
                        .precision(precision)
                        .seed(seed)
                        .mode(Mode.EVAL)
                        .build()));
        m.put(
                "mobilenet_v3_large",
                (classes, type, precision, seed) -> off(MobileNetV3.builder()
                        .classes(classes)
                        .dataType(type)
                        .precision(precision)
                        .seed(seed)
                        .mode(Mode.EVAL)
                        .build()));
        for (EfficientNet.Variant v : EfficientNet.Variant.values()) {
            m.put(
                    v.torchvisionName(),
                    (classes, type, precision, seed) -> off(EfficientNet.builder()
                            .variant(v)
                            .classes(classes)
                            .dataType(type)
                            .precision(precision)
                            .seed(seed)
                            .mode(Mode.EVAL)
                            .build()));
        }
        for (RegNet.Variant v : RegNet.Variant.values()) {
            m.put(
                    v.torchvisionName(),
                    (classes, type, precision, seed) -> off(RegNet.builder()
                            .variant(v)
                            .classes(classes)
                            .dataType(type)
                            .precision(precision)
                            .seed(seed)
                            .mode(Mode.EVAL)
                            .build()));
        }
        return m;
    }

    private static Network off(InvertedResidualNetwork net) {
        net.setStochastic(false);
        return net;
    }

    /** @return the names {@link #create} takes, in the order of the documentation's table */
    public static List<String> names() {
        return List.copyOf(MODELS.keySet());
    }

    /**
     * @param name torchvision's builder name, e.g. {@code "resnet50"}, {@code "mobilenet_v2"}
     * @param classes the classifier's outputs, at least 1
     * @param dataType FLOAT or DOUBLE
     * @param seed the initialisation's seed
     * @return the network in EVAL, dropout and stochastic depth off, the caller's to close
     * @throws IllegalArgumentException for an unknown name (the known ones listed) or a bad setting (named)
     */
    public static Network create(String name, int classes, DataType dataType, long seed) {
        return create(name, classes, dataType, Precision.FULL, seed);
    }

    /**
     * As {@link #create(String, int, DataType, long)} with feature maps stored as {@code precision} says.
     *
     * @param precision {@link Precision#FULL}, or a bfloat16 precision with the FLOAT data type
     * @throws UnsupportedOperationException for a precision no kernels here compute in (the message says why)
     */
    public static Network create(String name, int classes, DataType dataType, Precision precision, long seed) {
        Factory f = MODELS.get(name);
        if (f == null) {
            throw new IllegalArgumentException("model: expected one of " + names() + ", got " + name);
        }
        return f.create(classes, dataType, precision, seed);
    }

    /** @return whether {@link #create} knows {@code name} */
    public static boolean contains(String name) {
        return MODELS.containsKey(name);
    }
}
