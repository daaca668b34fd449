package org.convbn.nd4j.kernel;

import net.jcip.annotations.ThreadSafe;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * A source of {@link Kernels}, found with {@link java.util.ServiceLoader}: a module that brings faster kernels
 * lists its provider in {@code META-INF/services/org.convbn.nd4j.kernel.KernelsProvider}.
 */
@ThreadSafe
public interface KernelsProvider {
    /** System property naming the provider {@link Kernels#create} must use, e.g. {@code -Dconvbn.kernels=nd4j}. */
    String PROPERTY = "convbn.kernels";

    /** @return the name {@link #PROPERTY} selects it by */
    String name();

    /** @return the rank among providers that support a type: the highest wins; ND4J's own kernels are 0 */
    int priority();

    /** @return whether this provider can compute in {@code type} in this process (backend, CPU features) */
    boolean supports(DataType type);

    /** @return a new kernel set for {@code type} taking its arrays from {@code arena} */
    Kernels create(DataType type, Arena arena);

    /**
     * @return what this provider runs on here, for the log line naming the chosen kernels (e.g. the library version
     *         and instruction set); its name by default
     */
    default String describe() {
        return name();
    }

    /**
     * @param type a type {@link #supports} refuses
     * @return why, when it is a fall-back the user should hear of (the kernels' natives missing, say); null when the
     *         provider never computes that type, which is no fall-back
     */
    default String unavailableBecause(DataType type) {
        return null;
    }
}
