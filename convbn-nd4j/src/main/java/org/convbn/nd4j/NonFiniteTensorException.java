package org.convbn.nd4j;

import net.jcip.annotations.Immutable;

/**
 * A tensor holds NaN or infinity where finite values are needed (a diverged run's weights, a corrupt file). The block
 * names the tensor by its own names ({@code conv.weight}, {@code bn.running_var}); whoever placed the block under
 * another name (a network's {@code layer3.0.conv2.weight}, a DL4J layer) gives the exception that name with
 * {@link #named}.
 */
@Immutable
public final class NonFiniteTensorException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;
    private final String tensor;
    private final String problem;

    /**
     * @param tensor the tensor's name
     * @param problem what is wrong, e.g. "expected finite values, got NaN at flat index 3 of shape [2, 2]"
     */
    public NonFiniteTensorException(String tensor, String problem) {
        this(tensor, problem, null);
    }

    private NonFiniteTensorException(String tensor, String problem, Throwable cause) {
        super(tensor + ": " + problem, cause);
        this.tensor = tensor;
        this.problem = problem;
    }

    /** @return the tensor's name as this exception gives it */
    public String tensor() {
        return tensor;
    }

    /** @return what is wrong with it, without its name */
    public String problem() {
        return problem;
    }

    /**
     * @param name the tensor's name where the caller placed the block
     * @return the same problem under that name, caused by this exception
     */
    public NonFiniteTensorException named(String name) {
        return new NonFiniteTensorException(name, problem, this);
    }
}
