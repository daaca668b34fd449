package org.convbn.nd4j.kernel;

import java.util.Map;
import java.util.Set;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.ConvConfig;
import org.convbn.core.Precision;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastAddOp;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastMulOp;
import org.nd4j.linalg.api.ops.impl.reduce.same.Sum;
import org.nd4j.linalg.api.ops.impl.reduce3.Dot;
import org.nd4j.linalg.api.ops.impl.scalar.ScalarAdd;
import org.nd4j.linalg.api.ops.impl.scalar.ScalarMultiplication;
import org.nd4j.linalg.api.ops.impl.scalar.ScalarReverseSubtraction;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.AddOp;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.MulOp;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Sigmoid;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.BooleanIndexing;
import org.nd4j.linalg.indexing.conditions.Conditions;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * The operations a ConvBN block and the networks built of blocks run on feature maps: the convolution and its
 * backward, BatchNorm with frozen or batch statistics and its backward, ReLU, pooling, and elementwise steps. The
 * mode functions ({@link org.convbn.nd4j.ModeFunctions}) compose them; a kernel set implements them for one data
 * type on one engine: {@link Nd4jKernels} on libnd4j's ops (every data type and ND4J backend), and faster sets
 * found through {@link KernelsProvider} (convbn-onednn's oneDNN kernels for float32 on CPU).
 *
 * <p>Feature maps are INDArrays in a {@link Layout}: every kernel set reads and writes {@link Layout#NCHW}; a set
 * may prefer another layout ({@link #preferredLayout}) that networks then keep between layers. Parameters (W
 * {@code [O, C/groups, kH, kW]}, per-channel vectors {@code [C]}) are plain arrays in every set.
 *
 * <p>Contract of every method: arguments are not modified unless the method name ends in {@code InPlace}; results
 * are new arrays taken from {@link #arena()}, owned by the caller, who gives them back with
 * {@code arena().release(...)}. Arguments are assumed validated (shapes, data type) by the caller. A kernel set is
 * not thread-safe.
 */
@NotThreadSafe
public interface Kernels extends AutoCloseable {

    /** @return a short name, e.g. "nd4j" or "onednn" */
    String name();

    /**
     * @return what this set runs on, for logs and measurements, e.g. "onednn (oneDNN 2.5.2, isa avx2, layout
     *         BLOCKED8)"; the name by default
     */
    default String describe() {
        return name();
    }

    /**
     * @return per kind of primitive this set has run (e.g. "convolution forward_training"), the implementations its
     *         engine chose (e.g. "jit:avx2"); empty for sets that do not report them
     */
    default Map<String, Set<String>> implementations() {
        return Map.of();
    }

    /**
     * Frees what the set holds beyond its arena (cached primitives and their memory descriptors); the set cannot
     * run after. Nothing by default. Idempotent.
     */
    @Override
    default void close() {}

    /** @return the data type of every tensor this set computes on */
    DataType dataType();

    /**
     * @return how feature maps are stored: {@link Precision#FULL} (in {@link #dataType()}) by default,
     *         {@link Precision#BF16_EMULATED} for a set that keeps them in bfloat16
     */
    default Precision precision() {
        return Precision.FULL;
    }

    /** @return where results and temporaries come from */
    Arena arena();

    /**
     * @param channels a feature map's channel count
     * @return the layout this set computes fastest in, for feature maps a network keeps between layers
     */
    Layout preferredLayout(int channels);

    /**
     * @param t a feature map, not modified
     * @param target the layout wanted
     * @return a new array with t's values in {@code target}
     */
    INDArray relayout(INDArray t, Layout target);

    // ---------------------------------------------------------------- convolution

    /**
     * {@code conv(x, w') + b} with the weight {@code w' = diag(weightScale) w} (each output channel o scaled by
     * {@code weightScale[o]}, the BN fold of TUNE), or {@code w' = w} when no scale is given. A set may apply the
     * scale while it reorders the weight for its convolution, so the fold costs no pass of its own; the scaled
     * weight is rounded once, {@code fl(weightScale[o] * w)}, as {@link #scaleRows} computes it.
     *
     * @param c the conv configuration (stride, padding, dilation, groups)
     * @param x input, logical {@code [N, C, H, W]}, any layout this set reads
     * @param w weight {@code [O, C/groups, kH, kW]}
     * @param weightScale {@code [O]}, or null
     * @param b bias {@code [O]}, or null
     * @param out the layout of the result
     * @return a new array, logical {@code [N, O, oH, oW]}
     */
    INDArray conv(ConvConfig c, INDArray x, INDArray w, INDArray weightScale, INDArray b, Layout out);

    /**
     * Gradients of {@link #conv} given {@code g = dL/dY}; the weight gradient is with respect to the scaled weight
     * w' (multiply its rows by the scale for dL/dw).
     *
     * @param x the forward's input
     * @param w the forward's weight
     * @param weightScale the forward's weight scale, or null
     * @param g dL/dY, logical {@code [N, O, oH, oW]}
     * @param inputGradient whether to compute dL/dx (the first layer of a network needs none)
     * @param biasGradient whether to compute dL/db {@code = sum of g over N, H, W}
     * @param inputLayout the layout of dL/dx
     * @return dL/dx (or null), dL/dw, dL/db (or null)
     */
    ConvGradients convBackward(
            ConvConfig c,
            INDArray x,
            INDArray w,
            INDArray weightScale,
            INDArray g,
            boolean inputGradient,
            boolean biasGradient,
            Layout inputLayout);

    /**
     * The gradients of a conv.
     *
     * @param input dL/dx in the requested layout, or null when not requested
     * @param weight dL/dw' {@code [O, C/groups, kH, kW]} (w' the scaled weight)
     * @param bias dL/db {@code [O]}, or null when not requested
     */
    @NotThreadSafe
    record ConvGradients(INDArray input, INDArray weight, INDArray bias) {}

    // ---------------------------------------------------------------- weight-sized

    /**
     * @param w {@code [O, ...]}
     * @param scale {@code [O]}
     * @return a new array {@code scale[o] * w[o, ...]}
     */
    default INDArray scaleRows(INDArray w, INDArray scale) {
        INDArray out = arena().allocate(w.dataType(), w.shape());
        Nd4j.exec(new BroadcastMulOp(w, scale, out, 0));
        return out;
    }

    /**
     * @param w modified: {@code w[o, ...] *= scale[o]}
     * @param scale {@code [O]}
     */
    default void scaleRowsInPlace(INDArray w, INDArray scale) {
        Nd4j.exec(new BroadcastMulOp(w, scale, w, 0));
    }

    /**
     * @param a {@code [O, ...]}
     * @param b same shape
     * @return a new {@code [O]} array of the row dot products {@code sum_k a[o, k] b[o, k]}
     */
    default INDArray rowDots(INDArray a, INDArray b) {
        int[] rest = new int[a.rank() - 1];
        for (int i = 0; i < rest.length; i++) {
            rest[i] = i + 1;
        }
        INDArray dots = Nd4j.getExecutioner().exec(new Dot(a, b, rest));
        INDArray out = arena().allocate(a.dataType(), a.size(0)).assign(dots);
        Arena.direct().release(dots);
        return out;
    }

    // ---------------------------------------------------------------- BatchNorm

    /**
     * BatchNorm with given statistics, a per-channel affine pass:
     * {@code z = gamma (y - mean) / sqrt(var + eps) + beta} (gamma 1 and beta 0 when null).
     *
     * @param y feature map
     * @param mean {@code [C]}
     * @param variance {@code [C]}, non-negative
     * @param gamma {@code [C]} or null
     * @param beta {@code [C]} or null (null exactly when gamma is)
     * @param eps &gt; 0
     * @return z, a new array in y's layout
     */
    INDArray batchNorm(INDArray y, INDArray mean, INDArray variance, INDArray gamma, INDArray beta, double eps);

    /**
     * The backward of {@link #batchNorm} with the statistics held constant, with {@code r = 1/sqrt(var + eps)}:
     * {@code dy = gamma r g}, {@code dgamma = sum(g (y - mean) r)}, {@code dbeta = sum(g)} (sums over N, H, W).
     *
     * @return dy in g's layout; dgamma and dbeta, or nulls when gamma is null
     */
    BatchNormGradients batchNormBackward(
            INDArray y, INDArray g, INDArray mean, INDArray variance, INDArray gamma, double eps);

    /**
     * BatchNorm with the statistics of the batch: mean and biased variance of y per channel over N, H, W, then
     * {@link #batchNorm} with them.
     *
     * @return z in y's layout, and the batch mean and biased variance {@code [C]}
     */
    BatchStatistics batchNormTraining(INDArray y, INDArray gamma, INDArray beta, double eps);

    /**
     * The backward of {@link #batchNormTraining} through the batch statistics, with
     * {@code xhat = (y - mean) r} and n values per channel:
     * {@code dbeta = sum(g)}, {@code dgamma = sum(g xhat)}, {@code dy = gamma r (g - dbeta / n - xhat dgamma / n)}.
     *
     * @param mean the forward's batch mean
     * @param variance the forward's biased batch variance
     * @return dy in g's layout; dgamma and dbeta, or nulls when gamma is null
     */
    BatchNormGradients batchNormTrainingBackward(
            INDArray y, INDArray g, INDArray mean, INDArray variance, INDArray gamma, double eps);

    /**
     * The output and statistics of a BatchNorm over a batch.
     *
     * @param output z
     * @param mean batch mean {@code [C]}
     * @param variance biased batch variance {@code [C]}
     */
    @NotThreadSafe
    record BatchStatistics(INDArray output, INDArray mean, INDArray variance) {}

    /**
     * The gradients of a BatchNorm.
     *
     * @param input dL/dy
     * @param gamma dL/dgamma {@code [C]}, or null without an affine BN
     * @param beta dL/dbeta {@code [C]}, or null without an affine BN
     */
    @NotThreadSafe
    record BatchNormGradients(INDArray input, INDArray gamma, INDArray beta) {}

    // ---------------------------------------------------------------- pooling

    /**
     * Max pooling, square window, padding never wins.
     *
     * @param x feature map, logical {@code [N, C, H, W]}
     * @return the output in x's layout, logical {@code [N, C, oH, oW]} with
     *         {@code oH = floor((H + 2 pad - kernel) / stride) + 1}, and whatever the backward needs besides x
     *         (oneDNN's argmax workspace; null for sets that recompute it from x)
     */
    Pooled maxPool(INDArray x, int kernel, int stride, int pad);

    /**
     * @param x the forward's input when {@link Pooled#needsInput()}, else null (or anything: not read)
     * @param pooled the forward's result
     * @param g dL/d(output), in the output's layout
     * @return dL/dx in x's layout: each gradient routed to the maximum of its window
     */
    INDArray maxPoolBackward(INDArray x, Pooled pooled, INDArray g, int kernel, int stride, int pad);

    /**
     * A pooling result.
     *
     * @param output the pooled feature map
     * @param workspace what the backward needs instead of the input (the argmax), or null when it needs the input;
     *                  owned with the output
     * @param inputShape the input's logical shape
     * @param inputLayout the input's layout
     */
    @NotThreadSafe
    record Pooled(INDArray output, INDArray workspace, long[] inputShape, Layout inputLayout) {
        /** @return whether the backward reads the input's values (else the workspace stands in for them) */
        public boolean needsInput() {
            return workspace == null;
        }
    }

    /**
     * @param x feature map, logical {@code [N, C, H, W]}
     * @return its mean over H and W, a new plain {@code [N, C]} array
     */
    INDArray globalAveragePool(INDArray x);

    /**
     * @param g dL/d(pooled) {@code [N, C]}
     * @param logicalShape the pooled input's logical shape
     * @param layout the pooled input's layout
     * @return dL/dx: {@code g / (H W)} at every position
     */
    INDArray globalAveragePoolBackward(INDArray g, long[] logicalShape, Layout layout);

    // ---------------------------------------------------------------- per channel (either layout)

    /**
     * {@code out[n, c, h, w] = x[n, c, h, w] scale[c] + shift[c]}.
     *
     * @param x feature map, logical {@code [N, C, H, W]}, either layout, not modified
     * @param scale {@code [C]}, not modified
     * @param shift {@code [C]}, or null for none; not modified
     * @return a new array shaped and laid out like x
     */
    default INDArray channelAffine(INDArray x, INDArray scale, INDArray shift) {
        INDArray out = arena().allocate(x.dataType(), x.shape());
        Layout layout = Layout.of(x);
        Nd4j.exec(new BroadcastMulOp(x, perChannel(scale, layout), out, channelDimensions(layout)));
        if (shift != null) {
            Nd4j.exec(new BroadcastAddOp(out, perChannel(shift, layout), out, channelDimensions(layout)));
        }
        return out;
    }

    /**
     * {@code x[n, c, h, w] *= scale[c]}.
     *
     * @param x modified: a feature map, either layout
     * @param scale {@code [C]}, not modified
     */
    default void channelScaleInPlace(INDArray x, INDArray scale) {
        Layout layout = Layout.of(x);
        Nd4j.exec(new BroadcastMulOp(x, perChannel(scale, layout), x, channelDimensions(layout)));
    }

    /**
     * @param x feature map, either layout, not modified
     * @return its sums over N, H, W: a new {@code [C]} array
     */
    default INDArray channelSums(INDArray x) {
        Layout layout = Layout.of(x);
        INDArray sums = arena().allocate(x.dataType(), Layout.logicalShape(x)[1]);
        Nd4j.exec(new Sum(x, perChannel(sums, layout), 0, 2, 3)); // the channel dimensions stay in either layout
        return sums;
    }

    /** @return a [C] vector as the blocked layout's [C/b, b] view, or itself for NCHW */
    private static INDArray perChannel(INDArray v, Layout layout) {
        return layout.isBlocked() ? v.reshape('c', v.length() / layout.block(), layout.block()) : v;
    }

    /** @return the dimensions of a feature map in {@code layout} that a {@link #perChannel} vector spans */
    private static int[] channelDimensions(Layout layout) {
        return layout.isBlocked() ? new int[] {1, 4} : new int[] {1};
    }

    // ---------------------------------------------------------------- elementwise (any layout unless said)

    /**
     * ReLU in place.
     *
     * @param t modified: negative values become 0
     */
    default void reluInPlace(INDArray t) {
        Transforms.relu(t, false);
    }

    /**
     * @param out a ReLU's output
     * @param g dL/d(out), same shape
     * @return a new array {@code g * (out > 0)}
     */
    default INDArray reluBackward(INDArray out, INDArray g) {
        INDArray dx = arena().allocate(g.dataType(), g.shape());
        Nd4j.exec(DynamicCustomOp.builder("relu_bp")
                .addInputs(out, g)
                .addOutputs(dx)
                .addFloatingPointArguments(0.0)
                .build());
        return dx;
    }

    /**
     * @param out a ReLU's output
     * @param g modified: becomes {@code g * (out > 0)}
     */
    default void reluBackwardInPlace(INDArray out, INDArray g) {
        Nd4j.exec(DynamicCustomOp.builder("relu_bp")
                .addInputs(out, g)
                .addOutputs(g)
                .addFloatingPointArguments(0.0)
                .build());
    }

    /**
     * SiLU (swish), {@code z sigmoid(z)}.
     *
     * @param z the pre-activation, any layout
     * @return a new array shaped like z
     */
    default INDArray silu(INDArray z) {
        INDArray a = arena().allocate(z.dataType(), z.shape());
        Nd4j.exec(new Sigmoid(z, a));
        Nd4j.exec(new MulOp(a, z, a));
        return a;
    }

    /**
     * SiLU's backward from its input: {@code silu'(z) = s + z s (1 - s)}, {@code s = sigmoid(z)}. (libnd4j's
     * SwishDerivative evaluates {@code e^z (z + e^z + 1) / (e^z + 1)^2}, NaN in float32 for z above ~44.)
     *
     * @param z the forward's pre-activation
     * @param g modified: dL/d(silu(z)) becomes dL/dz
     */
    default void siluBackwardInPlace(INDArray z, INDArray g) {
        INDArray s = arena().allocate(z.dataType(), z.shape());
        Nd4j.exec(new Sigmoid(z, s));
        INDArray t = arena().allocate(z.dataType(), z.shape());
        Nd4j.exec(new ScalarReverseSubtraction(s, null, t, 1.0));
        Nd4j.exec(new MulOp(t, z, t));
        Nd4j.exec(new ScalarAdd(t, null, t, 1.0));
        Nd4j.exec(new MulOp(t, s, t));
        Nd4j.exec(new MulOp(g, t, g));
        arena().release(s, t);
    }

    /**
     * ReLU6 in place: {@code min(max(t, 0), 6)} (MobileNet's activation).
     *
     * @param t modified
     */
    default void relu6InPlace(INDArray t) {
        Nd4j.exec(DynamicCustomOp.builder("relu6")
                .addInputs(t)
                .addOutputs(t)
                .addFloatingPointArguments(0.0)
                .build());
    }

    /**
     * ReLU6's backward from its output: the derivative is 1 where {@code 0 < out < 6} (there out equals the input),
     * else 0.
     *
     * @param out a ReLU6's output
     * @param g modified: dL/d(out) becomes dL/d(input)
     */
    default void relu6BackwardInPlace(INDArray out, INDArray g) {
        Nd4j.exec(DynamicCustomOp.builder("relu6_bp")
                .addInputs(out, g)
                .addOutputs(g)
                .build());
    }

    /**
     * Hardswish, {@code z relu6(z + 3) / 6} (MobileNetV3's activation).
     *
     * @param z the pre-activation, any layout, not modified
     * @return a new array shaped like z
     */
    default INDArray hardswish(INDArray z) {
        INDArray a = arena().allocate(z.dataType(), z.shape());
        Nd4j.exec(new ScalarAdd(z, null, a, 3.0));
        relu6InPlace(a);
        Nd4j.exec(new MulOp(a, z, a));
        Nd4j.exec(new ScalarMultiplication(a, null, a, 1.0 / 6));
        return a;
    }

    /**
     * Hardswish's backward from its input: 0 for {@code z < -3}, 1 for {@code z > 3}, {@code (2 z + 3) / 6} between.
     *
     * @param z the forward's pre-activation, not modified
     * @param g modified: dL/d(hardswish(z)) becomes dL/dz
     */
    default void hardswishBackwardInPlace(INDArray z, INDArray g) {
        // d = (2 z + 3) / 6 is below -1/2 exactly where z < -3 and above 3/2 where z > 3: clamp d to [0, 1] there.
        INDArray d = arena().allocate(z.dataType(), z.shape());
        Nd4j.exec(new ScalarMultiplication(z, null, d, 2.0 / 6));
        Nd4j.exec(new ScalarAdd(d, null, d, 0.5));
        BooleanIndexing.replaceWhere(d, 0.0, Conditions.lessThan(-0.5));
        BooleanIndexing.replaceWhere(d, 1.0, Conditions.greaterThan(1.5));
        Nd4j.exec(new MulOp(g, d, g));
        arena().release(d);
    }

    /**
     * {@code out[n, c, h, w] = x[n, c, h, w] s[n, c]}: a per-(sample, channel) gate such as squeeze-and-excitation's.
     *
     * @param x feature map, logical {@code [N, C, H, W]}, either layout
     * @param s {@code [N, C]}, contiguous
     * @return a new array shaped and laid out like x
     */
    default INDArray scaleChannels(INDArray x, INDArray s) {
        INDArray out = arena().allocate(x.dataType(), x.shape());
        if (Layout.of(x) == Layout.NCHW) {
            Nd4j.exec(new BroadcastMulOp(x, s, out, 0, 1));
        } else {
            int b = Layout.of(x).block();
            INDArray blocked = s.reshape(s.size(0), s.size(1) / b, b);
            Nd4j.exec(new BroadcastMulOp(x, blocked, out, 0, 1, 4));
        }
        return out;
    }

    /**
     * {@code x[n] *= m[n]} for every sample n (stochastic depth's per-sample drop).
     *
     * @param x modified: a feature map in either layout, or any array with samples on dimension 0
     * @param m {@code [N]}
     */
    default void scaleSamplesInPlace(INDArray x, INDArray m) {
        Nd4j.exec(new BroadcastMulOp(x, m, x, 0));
    }

    /**
     * {@code target += alpha * source}.
     *
     * @param target modified
     * @param source same shape and layout
     */
    default void addInPlace(INDArray target, INDArray source, double alpha) {
        if (alpha == 1.0) {
            Nd4j.exec(new AddOp(target, source, target));
            return;
        }
        INDArray scaled = arena().allocate(source.dataType(), source.shape());
        Nd4j.exec(new ScalarMultiplication(source, null, scaled, alpha));
        Nd4j.exec(new AddOp(target, scaled, target));
        arena().release(scaled);
    }

    /**
     * @param t modified: multiplied by alpha
     */
    default void scaleInPlace(INDArray t, double alpha) {
        Nd4j.exec(new ScalarMultiplication(t, null, t, alpha));
    }

    /** @return a new array with t's values, same layout */
    default INDArray copy(INDArray t) {
        INDArray c = arena().allocate(t.dataType(), t.shape());
        c.assign(t);
        return c;
    }

    // ---------------------------------------------------------------- choosing a set

    /**
     * The fastest kernel set available for a data type: the highest-priority {@link KernelsProvider} on the class
     * path that supports it here, else {@link Nd4jKernels}. The system property {@code convbn.kernels} (a provider
     * name, e.g. {@code nd4j}) forces one.
     *
     * @param type FLOAT or DOUBLE
     * @param arena where results come from
     * @return a new kernel set
     * @throws IllegalArgumentException if {@code convbn.kernels} names a provider that is absent or does not support
     *                                  {@code type}
     */
    static Kernels create(DataType type, Arena arena) {
        KernelChoice choice = KernelChoice.of(type);
        choice.logOnce();
        return choice.provider().create(type, arena);
    }

    /**
     * {@link #create(DataType, Arena)} with feature maps stored as {@code precision} says.
     *
     * @param type FLOAT or DOUBLE; FLOAT for a bfloat16 precision
     * @param precision {@link Precision#FULL}, or {@link Precision#BF16_EMULATED} for the fastest float32 set under
     *                  bfloat16 feature maps
     * @param arena where results come from
     * @return a new kernel set
     * @throws IllegalArgumentException for a bfloat16 precision with a type other than FLOAT
     * @throws UnsupportedOperationException for {@link Precision#BF16_MIXED}: no kernel set computes in bfloat16;
     *                                       the message names the set and instruction set found here
     */
    static Kernels create(DataType type, Precision precision, Arena arena) {
        if (precision.isBf16() && type != DataType.FLOAT) {
            throw new IllegalArgumentException(
                    "dataType: expected FLOAT for precision " + precision + " (float32 parameters), got " + type);
        }
        return switch (precision) {
            case FULL -> create(type, arena);
            case BF16_MIXED ->
                throw new UnsupportedOperationException("precision BF16_MIXED: no kernel set here"
                        + " computes in bfloat16 (found " + describeChoice(DataType.FLOAT) + "; native bfloat16"
                        + " convolutions need oneDNN on a CPU with avx512_core_bf16 and are not built yet); use"
                        + " BF16_EMULATED for bfloat16 feature maps computed in float32");
            case BF16_EMULATED -> withBf16FeatureMaps(create(DataType.FLOAT, arena));
        };
    }

    /**
     * @param float32 a float32 kernel set, owned by the result from now on
     * @return the set under feature maps stored in bfloat16 ({@link Precision#BF16_EMULATED}), on float32's arena
     * @throws IllegalArgumentException if {@code float32} computes in another type
     */
    static Kernels withBf16FeatureMaps(Kernels float32) {
        return new EmulatedBf16Kernels(float32);
    }

    /**
     * @param type FLOAT or DOUBLE
     * @return which kernels {@link #create} uses for {@code type} here and on what: the provider with its library
     *         and instruction set, ND4J's version and backend, and any faster provider that cannot run and why (the
     *         line logged at INFO, once per type, when the first kernel set of that type is made; a fall-back is also
     *         logged at WARN)
     * @throws IllegalArgumentException as {@link #create} does
     */
    static String describeChoice(DataType type) {
        return KernelChoice.of(type).describe();
    }
}
