package org.convbn.net;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.Cost;
import org.convbn.nd4j.kernel.Arena;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A fully connected layer {@code y = x W^T + b}: x {@code [N, in]}, W {@code [out, in]} (PyTorch's layout),
 * b {@code [out]}, y {@code [N, out]}. Keeps x between forward and backward; results come from the given arena.
 */
@NotThreadSafe
public final class Linear {
    private final String name;
    private final INDArray weight;
    private final INDArray bias;
    private final Arena arena;
    private INDArray savedInput;

    /**
     * PyTorch's default initialisation: W and b uniform in +-1/sqrt(in).
     *
     * @param name the parameter prefix (e.g. "fc")
     * @param arena where outputs and gradients come from
     */
    public Linear(String name, int in, int out, DataType type, long seed, Arena arena) {
        this.name = name;
        this.arena = arena;
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

    /** @return the module name, e.g. {@code fc} (its tensors are {@code fc.weight} and {@code fc.bias}) */
    public String name() {
        return name;
    }

    /** @return the output size */
    public int outputs() {
        return (int) weight.size(0);
    }

    /**
     * The transfer-learning step of a classifier: a layer for another label set.
     *
     * @param out the new output size, at least 1
     * @param seed the seed of the new weights (PyTorch's default initialisation)
     * @return a new layer with this one's name, input size, data type and arena
     * @throws IllegalArgumentException naming the classes if {@code out < 1}
     */
    public Linear withOutputs(int out, long seed) {
        if (out < 1) {
            throw new IllegalArgumentException("classes: expected >= 1, got " + out);
        }
        return new Linear(name, (int) weight.size(1), out, weight.dataType(), seed, arena);
    }

    /** @return the layer's cost: {@code in * out} weights and multiply-adds, {@code out} biases */
    public Cost cost() {
        return Cost.dense((int) weight.size(1), (int) weight.size(0));
    }

    /**
     * @param x {@code [N, in]}, not modified, kept until backward
     * @return a new {@code [N, out]} array
     */
    public INDArray forward(INDArray x) {
        savedInput = x;
        INDArray y = arena.allocate(x.dataType(), x.size(0), weight.size(0));
        Nd4j.gemm(x, weight, y, false, true, 1.0, 0.0);
        return y.addiRowVector(bias);
    }

    /**
     * @param g dL/dy {@code [N, out]}, not modified
     * @param sink receives {@code name.weight} and {@code name.bias} gradients
     * @return dL/dx, a new array
     */
    public INDArray backward(INDArray g, GradientSink sink) {
        INDArray dw = arena.allocate(g.dataType(), weight.shape());
        Nd4j.gemm(g, savedInput, dw, true, false, 1.0, 0.0);
        INDArray dx = arena.allocate(g.dataType(), g.size(0), weight.size(1));
        Nd4j.gemm(g, weight, dx, false, false, 1.0, 0.0);
        INDArray sums = g.sum(0);
        INDArray db = arena.allocate(g.dataType(), bias.shape()).assign(sums);
        Arena.direct().release(sums);
        savedInput = null;
        sink.accept(name + ".weight", weight, dw);
        sink.accept(name + ".bias", bias, db);
        return dx;
    }

    /** Forgets the saved input (the caller owns it). */
    void clearSaved() {
        savedInput = null;
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
