package org.convbn.net;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.Cost;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.Layout;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.scalar.ScalarAdd;
import org.nd4j.linalg.api.ops.impl.scalar.ScalarMultiplication;
import org.nd4j.linalg.api.ops.impl.scalar.ScalarReverseSubtraction;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.MulOp;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Sigmoid;
import org.nd4j.linalg.factory.Nd4j;

/**
 * torchvision's {@code SqueezeExcitation}: a per-(sample, channel) gate computed from the feature map's channel
 * means, with SiLU and sigmoid (EfficientNet), ReLU and sigmoid (RegNet) or ReLU and hardsigmoid (MobileNetV3).
 *
 * <pre>
 * p = mean_hw(u)                       [N, E]
 * a = act(p W1^T + b1)                 [N, S]    fc1: Conv2d(E, S, 1) with bias, W1 [S, E, 1, 1]; act SiLU or ReLU
 * s = scale(c),  c = a W2^T + b2       [N, E]    fc2: Conv2d(S, E, 1) with bias, W2 [E, S, 1, 1]
 * out = u s                            (broadcast over H, W)
 * </pre>
 *
 * scale is {@code sigmoid(c)} or {@code hardsigmoid(c) = clip(c / 6 + 1 / 2, 0, 1) = relu6(c + 3) / 6}. Backward
 * with g = dL/d(out): {@code ds = sum_hw(g u)}, {@code dc = ds scale'(c)} (sigmoid: {@code s (1 - s)};
 * hardsigmoid: {@code 1/6} where {@code 0 < s < 1}, else 0), {@code dW2 = dc^T a}, {@code db2 = sum_n dc},
 * {@code da = (dc W2) act'}, {@code dW1 = da^T p}, {@code db1 = sum_n da}, {@code du = g s + (da W1) / (H W)}.
 *
 * <p>Keeps u (not owned: the caller keeps it alive until the backward), p, fc1's output before and after its
 * activation, and s, all but u {@code [N, E]} or {@code [N, S]}. Feature maps in either {@link Layout}. Not
 * thread-safe.
 */
@NotThreadSafe
public final class SqueezeExcitation {
    /** The gate's squashing function. */
    public enum Scale {
        /** {@code 1 / (1 + e^-c)}: EfficientNet's and RegNet's. */
        SIGMOID,
        /** {@code clip(c / 6 + 1 / 2, 0, 1)}: MobileNetV3's. */
        HARDSIGMOID
    }

    private final String name;
    private final ConvActivation activation;
    private final Scale scale;
    private final Kernels kernels;
    private final Arena arena;
    private final INDArray w1;
    private final INDArray b1;
    private final INDArray w2;
    private final INDArray b2;
    // Saved by the forward until the backward:
    private INDArray input;
    private INDArray pooled;
    /** fc1's output before its activation, and after. */
    private INDArray squeezedInput;

    private INDArray squeezed;
    private INDArray gate;

    /**
     * EfficientNet's gate: SiLU and sigmoid.
     *
     * @see #SqueezeExcitation(String, int, int, ConvActivation, Scale, DataType, long, Kernels)
     */
    public SqueezeExcitation(String name, int channels, int squeeze, DataType type, long seed, Kernels kernels) {
        this(name, channels, squeeze, ConvActivation.SILU, Scale.SIGMOID, type, seed, kernels);
    }

    /**
     * torchvision's EfficientNet initialisation: weights normal with std {@code sqrt(2 / out)} (Kaiming, fan out),
     * biases 0.
     *
     * @param name the module name, e.g. {@code features.1.0.block.1}
     * @param channels E, the gated channels
     * @param squeeze S, the bottleneck width
     * @param activation fc1's activation: SILU or RELU
     * @param scale the gate's squashing function
     * @param type FLOAT or DOUBLE
     * @param seed the weight draw's seed
     * @param kernels where pooling runs and arrays come from
     * @throws IllegalArgumentException naming a width below 1 or another activation
     */
    public SqueezeExcitation(
            String name,
            int channels,
            int squeeze,
            ConvActivation activation,
            Scale scale,
            DataType type,
            long seed,
            Kernels kernels) {
        if (channels < 1 || squeeze < 1) {
            throw new IllegalArgumentException("channels, squeeze: expected >= 1, got " + channels + ", " + squeeze);
        }
        if (activation != ConvActivation.SILU && activation != ConvActivation.RELU) {
            throw new IllegalArgumentException("activation: expected SILU or RELU, got " + activation);
        }
        this.name = name;
        this.activation = activation;
        this.scale = Objects.requireNonNull(scale, "scale");
        this.kernels = kernels;
        this.arena = kernels.arena();
        SplittableRandom rng = new SplittableRandom(seed);
        this.w1 = normal(rng, Math.sqrt(2.0 / squeeze), type, squeeze, channels, 1, 1);
        this.b1 = Nd4j.zeros(type, squeeze);
        this.w2 = normal(rng, Math.sqrt(2.0 / channels), type, channels, squeeze, 1, 1);
        this.b2 = Nd4j.zeros(type, channels);
    }

    private static INDArray normal(SplittableRandom rng, double std, DataType type, long... shape) {
        double[] v = new double[(int) (shape[0] * shape[1])];
        for (int i = 0; i < v.length; i++) {
            v[i] = std * rng.nextGaussian();
        }
        return Nd4j.create(v, shape, DataType.DOUBLE).castTo(type);
    }

    /** @return the module name, e.g. {@code features.1.0.block.1} */
    public String name() {
        return name;
    }

    /** @return the parameters and multiply-adds per sample: two dense layers on the pooled vector */
    public Cost cost() {
        int e = (int) w1.size(1);
        int s = (int) w1.size(0);
        return Cost.dense(e, s).plus(Cost.dense(s, e));
    }

    /**
     * @param u feature map, logical {@code [N, E, H, W]}, not modified, kept until the backward
     * @return a new array {@code u s}, shaped and laid out like u, the caller's
     */
    public INDArray forward(INDArray u) {
        clearSaved();
        input = u;
        pooled = kernels.globalAveragePool(u);
        long n = pooled.size(0);
        INDArray a = arena.allocate(kernels.dataType(), n, w1.size(0)); // vectors in the parameters' type
        Nd4j.gemm(pooled, matrix(w1), a, false, true, 1.0, 0.0);
        a.addiRowVector(b1);
        squeezedInput = a;
        if (activation == ConvActivation.SILU) {
            squeezed = kernels.silu(a);
        } else {
            squeezed = kernels.copy(a);
            kernels.reluInPlace(squeezed);
        }
        INDArray c = arena.allocate(kernels.dataType(), n, w2.size(0));
        Nd4j.gemm(squeezed, matrix(w2), c, false, true, 1.0, 0.0);
        c.addiRowVector(b2);
        if (scale == Scale.SIGMOID) {
            gate = arena.allocate(kernels.dataType(), n, w2.size(0));
            Nd4j.exec(new Sigmoid(c, gate));
            arena.release(c);
        } else {
            // hardsigmoid(c) = relu6(c + 3) / 6, in place
            Nd4j.exec(new ScalarAdd(c, null, c, 3.0));
            kernels.relu6InPlace(c);
            kernels.scaleInPlace(c, 1.0 / 6);
            gate = c;
        }
        return kernels.scaleChannels(u, gate);
    }

    /**
     * @param g dL/d(out), not modified
     * @param sink receives {@code name.fc2.*} then {@code name.fc1.*}
     * @return dL/du, a new array from the arena, the caller's
     * @throws IllegalStateException without a pending forward
     */
    public INDArray backward(INDArray g, GradientSink sink) {
        if (input == null) {
            throw new IllegalStateException("backward: expected a pending forward of " + name + ", got none");
        }
        long[] logical = Layout.logicalShape(input);
        INDArray gu = arena.allocate(g.dataType(), g.shape());
        Nd4j.exec(new MulOp(g, input, gu));
        INDArray dc = kernels.globalAveragePool(gu); // mean_hw(g u); times H W below
        arena.release(gu);
        dc.muli(logical[2] * logical[3]);
        if (scale == Scale.SIGMOID) {
            INDArray oneMinus = arena.allocate(gate.dataType(), gate.shape());
            Nd4j.exec(new ScalarReverseSubtraction(gate, null, oneMinus, 1.0));
            dc.muli(gate).muli(oneMinus);
            arena.release(oneMinus);
        } else {
            // relu6'(c + 3) / 6, read from relu6's output 6 s: 1/6 where 0 < s < 1
            INDArray six = arena.allocate(gate.dataType(), gate.shape());
            Nd4j.exec(new ScalarMultiplication(gate, null, six, 6.0));
            kernels.relu6BackwardInPlace(six, dc);
            kernels.scaleInPlace(dc, 1.0 / 6);
            arena.release(six);
        }

        INDArray dw2 = arena.allocate(w2.dataType(), w2.shape());
        Nd4j.gemm(dc, squeezed, matrix(dw2), true, false, 1.0, 0.0);
        INDArray db2 = columnSums(dc);
        INDArray da = arena.allocate(dc.dataType(), dc.size(0), w2.size(1));
        Nd4j.gemm(dc, matrix(w2), da, false, false, 1.0, 0.0);
        if (activation == ConvActivation.SILU) {
            kernels.siluBackwardInPlace(squeezedInput, da);
        } else {
            kernels.reluBackwardInPlace(squeezed, da);
        }
        sink.accept(name + ".fc2.weight", w2, dw2);
        sink.accept(name + ".fc2.bias", b2, db2);

        INDArray dw1 = arena.allocate(w1.dataType(), w1.shape());
        Nd4j.gemm(da, pooled, matrix(dw1), true, false, 1.0, 0.0);
        INDArray db1 = columnSums(da);
        INDArray dp = arena.allocate(da.dataType(), da.size(0), w1.size(1));
        Nd4j.gemm(da, matrix(w1), dp, false, false, 1.0, 0.0);
        sink.accept(name + ".fc1.weight", w1, dw1);
        sink.accept(name + ".fc1.bias", b1, db1);

        INDArray du = kernels.scaleChannels(g, gate);
        INDArray fromPool = kernels.globalAveragePoolBackward(dp, logical, Layout.of(input));
        kernels.addInPlace(du, fromPool, 1.0);
        arena.release(fromPool, dp, da, dc);
        clearSaved();
        return du;
    }

    private INDArray columnSums(INDArray m) {
        INDArray sums = m.sum(0);
        INDArray out = arena.allocate(m.dataType(), m.size(1)).assign(sums);
        Arena.direct().release(sums);
        return out;
    }

    /** A {@code [O, I, 1, 1]} conv weight as the {@code [O, I]} matrix it is (a view). */
    private static INDArray matrix(INDArray w) {
        return w.reshape(w.size(0), w.size(1));
    }

    /** Gives back what the forward kept (not the input, which is the caller's). */
    public void clearSaved() {
        arena.release(pooled, squeezedInput, squeezed, gate);
        input = null;
        pooled = null;
        squeezedInput = null;
        squeezed = null;
        gate = null;
    }

    /** Adds what the forward keeps, the input aside, to {@code into}. */
    void collectRetained(List<INDArray> into) {
        if (gate != null) {
            into.addAll(List.of(pooled, squeezedInput, squeezed, gate));
        }
    }

    /** @return {@code name.fc1.weight}, {@code .fc1.bias}, {@code .fc2.weight}, {@code .fc2.bias}; live arrays */
    public Map<String, INDArray> parameters() {
        Map<String, INDArray> m = new LinkedHashMap<>();
        m.put(name + ".fc1.weight", w1);
        m.put(name + ".fc1.bias", b1);
        m.put(name + ".fc2.weight", w2);
        m.put(name + ".fc2.bias", b2);
        return m;
    }
}
