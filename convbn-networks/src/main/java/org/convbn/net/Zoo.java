package org.convbn.net;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import net.jcip.annotations.ThreadSafe;
import org.convbn.core.Mode;
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

    /** A builder of one model: classes, data type, seed to a network in EVAL. */
    @FunctionalInterface
    private interface Factory {
        Network create(int classes, DataType dataType, long seed);
    }

    private static final Map<String, Factory> MODELS = models();

    private static Map<String, Factory> models() {
        Map<String, Factory> m = new LinkedHashMap<>();
        for (ResNet.Variant v : ResNet.Variant.values()) {
            m.put(v.torchvisionName(), (classes, type, seed) -> ResNet.builder(v)
                    .classes(classes)
                    .dataType(type)
                    .seed(seed)
                    .mode(Mode.EVAL)
                    .build());
        }
        m.put(
                "mobilenet_v2",
                (classes, type, seed) -> off(MobileNetV2.builder()
                        .classes(classes)
                        .dataType(type)
                        .seed(seed)
                        .mode(Mode.EVAL)
                        .build()));
        m.put(
                "mobilenet_v3_large",
                (classes, type, seed) -> off(MobileNetV3.builder()
                        .classes(classes)
                        .dataType(type)
                        .seed(seed)
                        .mode(Mode.EVAL)
                        .build()));
        for (EfficientNet.Variant v : EfficientNet.Variant.values()) {
            m.put(
                    v.torchvisionName(),
                    (classes, type, seed) -> off(EfficientNet.builder()
                            .variant(v)
                            .classes(classes)
                            .dataType(type)
                            .seed(seed)
                            .mode(Mode.EVAL)
                            .build()));
        }
        for (RegNet.Variant v : RegNet.Variant.values()) {
            m.put(
                    v.torchvisionName(),
                    (classes, type, seed) -> off(RegNet.builder()
                            .variant(v)
                            .classes(classes)
                            .dataType(type)
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
        Factory f = MODELS.get(name);
        if (f == null) {
            throw new IllegalArgumentException("model: expected one of " + names() + ", got " + name);
        }
        return f.create(classes, dataType, seed);
    }

    /** @return whether {@link #create} knows {@code name} */
    public static boolean contains(String name) {
        return MODELS.containsKey(name);
    }
}
