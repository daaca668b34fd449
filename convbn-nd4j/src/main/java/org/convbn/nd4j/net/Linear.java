package org.convbn.nd4j.net;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A fully connected layer {@code y = x W^T + b}: x {@code [N, in]}, W {@code [out, in]} (PyTorch's layout),
 * b {@code [out]}, y {@code [N, out]}. Keeps x between forward and backward.
 */
public final class Linear {
    private final String name;
    private final INDArray weight;
    private final INDArray bias;
    private INDArray savedInput;

    /**
     * PyTorch's default initialisation: W and b uniform in +-1/sqrt(in).
     *
     * @param name the parameter prefix (e.g. "fc")
     */
    public Linear(String name, int in, int out, DataType type, long seed) {
        this.name = name;
        SplittableRandom rng = new SplittableRandom(seed);
        double bound = 1 / Math.sqrt(in);
        double[] w = new double[in * out];
        for (int i = 0; i < w.length; i++) {
            w[i] = bound * (2 * rng.nextDouble() - 1);
        }
        double[] b = new double[out];
        for (int i = 0; i < b.length; i++) {
            b[i] = bound * (2 * rng.nextDouble() - 1);
        }
        this.weight = Nd4j.create(w, new long[] {out, in}, DataType.DOUBLE).castTo(type);
        this.bias = Nd4j.create(b, new long[] {out}, DataType.DOUBLE).castTo(type);
    }

    /** @return the layer's cost: {@code in * out} weights and multiply-adds, {@code out} biases */
    public org.convbn.core.Cost cost() {
        return org.convbn.core.Cost.dense((int) weight.size(1), (int) weight.size(0));
    }

    /** @param x {@code [N, in]}, not modified, kept until backward; @return a new {@code [N, out]} array */
    public INDArray forward(INDArray x) {
        savedInput = x;
        return x.mmul(weight.transpose()).addiRowVector(bias);
    }

    /**
     * @param g dL/dy {@code [N, out]}, not modified
     * @param gradients receives {@code name.weight} and {@code name.bias} gradients (modified)
     * @return dL/dx, a new array
     */
    public INDArray backward(INDArray g, Map<String, INDArray> gradients) {
        gradients.put(name + ".weight", g.transpose().mmul(savedInput));
        gradients.put(name + ".bias", g.sum(0));
        INDArray dx = g.mmul(weight);
        savedInput = null;
        return dx;
    }

    /** @return {@code name.weight}, {@code name.bias}; live arrays */
    public Map<String, INDArray> parameters() {
        Map<String, INDArray> m = new LinkedHashMap<>();
        m.put(name + ".weight", weight);
        m.put(name + ".bias", bias);
        return m;
    }

    /** @return the saved input, or null */
    INDArray savedInput() {
        return savedInput;
    }
}
