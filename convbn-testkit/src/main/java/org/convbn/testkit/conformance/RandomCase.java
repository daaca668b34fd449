package org.convbn.testkit.conformance;

import java.util.SplittableRandom;
import org.convbn.core.ConvBNConfig;
import org.convbn.testkit.reference.ReferenceParameters;
import org.convbn.testkit.reference.Tensor;

/**
 * Reproducible random tensors for a block configuration, in float64. Ranges keep every quantity of order one:
 * gamma in [0.5, 1.5] and running variance in [0.5, 1.5] so s stays away from zero, inputs and upstream
 * gradients in [-1, 1].
 */
public final class RandomCase {
    private RandomCase() {}

    /**
     * @param config the block configuration
     * @param seed the seed
     * @return parameters shaped for {@code config}, bias and affine tensors present as configured
     */
    public static ReferenceParameters parameters(ConvBNConfig config, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        int o = config.channels();
        Tensor w = Tensor.uniform(rng, -0.5, 0.5, Tensor.dims(config.producer().weightShape()));
        Tensor b = config.producer().bias() ? Tensor.uniform(rng, -0.5, 0.5, o) : null;
        Tensor gamma = config.bn().affine() ? Tensor.uniform(rng, 0.5, 1.5, o) : null;
        Tensor beta = config.bn().affine() ? Tensor.uniform(rng, -0.5, 0.5, o) : null;
        Tensor mean = Tensor.uniform(rng, -0.5, 0.5, o);
        Tensor var = Tensor.uniform(rng, 0.5, 1.5, o);
        return new ReferenceParameters(w, b, gamma, beta, mean, var);
    }

    /** @return a tensor of the given shape with values in [-1, 1) */
    public static Tensor tensor(long[] shape, long seed) {
        return Tensor.uniform(new SplittableRandom(seed), -1, 1, Tensor.dims(shape));
    }
}
