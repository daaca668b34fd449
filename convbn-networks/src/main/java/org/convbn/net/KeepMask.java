package org.convbn.net;

import java.util.SplittableRandom;
import org.convbn.nd4j.kernel.Arena;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** The masks of dropout and stochastic depth: PyTorch's inverted dropout, kept entries scaled by {@code 1 / (1 - p)}. */
final class KeepMask {
    private KeepMask() {}

    /**
     * @param rng the draw, advanced by one value per entry (row-major)
     * @param p the drop probability, in [0, 1)
     * @param type the mask's data type
     * @param arena where the mask comes from
     * @param shape the mask's shape
     * @return a new array, each entry 0 with probability p, else {@code 1 / (1 - p)}
     */
    static INDArray draw(SplittableRandom rng, double p, DataType type, Arena arena, long... shape) {
        long length = 1;
        for (long d : shape) {
            length *= d;
        }
        double[] m = new double[(int) length];
        for (int i = 0; i < m.length; i++) {
            m[i] = rng.nextDouble() < 1 - p ? 1 / (1 - p) : 0;
        }
        INDArray values = Nd4j.create(m, shape, DataType.DOUBLE);
        INDArray mask = arena.allocate(type, shape).assign(values);
        Arena.direct().release(values);
        return mask;
    }
}
