package org.convbn.nd4j.kernel;

import java.util.Map;
import java.util.Set;
import java.util.function.BiConsumer;
import java.util.function.BiFunction;
import java.util.function.Consumer;
import java.util.function.Function;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.ConvConfig;
import org.convbn.core.Precision;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * {@link Precision#BF16_EMULATED}: a float32 kernel set under feature maps stored in bfloat16.
 *
 * <p>Each kernel converts its bfloat16 feature-map arguments to float32 copies (exact: every bfloat16 value is a
 * float32), runs the float32 kernel, and rounds the feature maps it returns to bfloat16 (round to nearest even), so
 * every value a network keeps between kernels is what a native bfloat16 kernel would have stored: a dot product
 * accumulated in float32 and rounded once. The rule for the type of a result:
 * <ul>
 *   <li>a convolution's output and its input gradient, and the feature map {@link #globalAveragePoolBackward} spreads,
 *       are bfloat16 whatever the input's type (so a float32 image enters a network and bfloat16 leaves its first
 *       conv);
 *   <li>every other feature-map result has its input's type (float32 arrays pass through to the float32 kernel);
 *   <li>parameter-sized results (weight and bias gradients, BN statistics and their gradients, channel sums, the
 *       pooled {@code [N, C]} features) are float32.
 * </ul>
 * In-place kernels on a bfloat16 array compute on a float32 copy and round it back. Temporaries come from the
 * delegate's arena and go back to it.
 */
@NotThreadSafe
final class EmulatedBf16Kernels implements Kernels {
    private final Kernels delegate;
    private final Arena arena;

    /** @param delegate a float32 set, owned from now on (closed with this one) */
    EmulatedBf16Kernels(Kernels delegate) {
        if (delegate.dataType() != DataType.FLOAT) {
            throw new IllegalArgumentException(
                    "delegate: expected float32 kernels under bfloat16 feature maps, got " + delegate.dataType());
        }
        this.delegate = delegate;
        this.arena = delegate.arena();
    }

    @Override
    public String name() {
        return delegate.name() + "+bf16-emulated";
    }

    @Override
    public String describe() {
        return delegate.describe() + ", feature maps in bfloat16, computed in float32 (emulated mixed precision)";
    }

    @Override
    public Precision precision() {
        return Precision.BF16_EMULATED;
    }

    @Override
    public Map<String, Set<String>> implementations() {
        return delegate.implementations();
    }

    @Override
    public void close() {
        delegate.close();
    }

    @Override
    public DataType dataType() {
        return DataType.FLOAT;
    }

    @Override
    public Arena arena() {
        return arena;
    }

    @Override
    public Layout preferredLayout(int channels) {
        return delegate.preferredLayout(channels);
    }

    // ---------------------------------------------------------------- conversions

    /** @return t itself when it is not bfloat16, else a new float32 copy (give it back with {@link #done}) */
    private INDArray wide(INDArray t) {
        if (t == null || t.dataType() != DataType.BFLOAT16) {
            return t;
        }
        return arena.allocate(DataType.FLOAT, t.shape()).assign(t);
    }

    /** Gives back {@code copy} when {@link #wide} made it from {@code original}. */
    private void done(INDArray copy, INDArray original) {
        if (copy != original) {
            arena.release(copy);
        }
    }

    /** @return a new bfloat16 array with t's values rounded; t (a float32 result) is given back */
    private INDArray narrow(INDArray t) {
        if (t == null) {
            return null;
        }
        INDArray out = arena.allocate(DataType.BFLOAT16, t.shape()).assign(t);
        arena.release(t);
        return out;
    }

    /** @return the float32 result r, narrowed when the input it was computed from was bfloat16 */
    private INDArray like(INDArray input, INDArray r) {
        return input.dataType() == DataType.BFLOAT16 ? narrow(r) : r;
    }

    /** Runs a kernel on {@code x}'s float32 view and returns its result in x's type. */
    private INDArray unary(INDArray x, Function<INDArray, INDArray> kernel) {
        INDArray xw = wide(x);
        INDArray r = kernel.apply(xw);
        done(xw, x);
        return like(x, r);
    }

    /** Runs an in-place kernel on {@code t}, through a float32 copy rounded back when t is bfloat16. */
    private void inPlace(INDArray t, Consumer<INDArray> kernel) {
        INDArray tw = wide(t);
        kernel.accept(tw);
        if (tw != t) {
            t.assign(tw);
            arena.release(tw);
        }
    }

    @Override
    public INDArray relayout(INDArray t, Layout target) {
        return unary(t, tw -> delegate.relayout(tw, target));
    }

    // ---------------------------------------------------------------- convolution

    @Override
    public INDArray conv(ConvConfig c, INDArray x, INDArray w, INDArray weightScale, INDArray b, Layout out) {
        INDArray xw = wide(x);
        INDArray y = delegate.conv(c, xw, w, weightScale, b, out);
        done(xw, x);
        return narrow(y);
    }

    @Override
    public ConvGradients convBackward(
            ConvConfig c,
            INDArray x,
            INDArray w,
            INDArray weightScale,
            INDArray g,
            boolean inputGradient,
            boolean biasGradient,
            Layout inputLayout) {
        INDArray xw = wide(x);
        INDArray gw = wide(g);
        ConvGradients r = delegate.convBackward(c, xw, w, weightScale, gw, inputGradient, biasGradient, inputLayout);
        done(xw, x);
        done(gw, g);
        return new ConvGradients(narrow(r.input()), r.weight(), r.bias());
    }

    // ---------------------------------------------------------------- weight-sized (float32 throughout)

    @Override
    public INDArray scaleRows(INDArray w, INDArray scale) {
        return delegate.scaleRows(w, scale);
    }

    @Override
    public void scaleRowsInPlace(INDArray w, INDArray scale) {
        delegate.scaleRowsInPlace(w, scale);
    }

    @Override
    public INDArray rowDots(INDArray a, INDArray b) {
        return delegate.rowDots(a, b);
    }

    // ---------------------------------------------------------------- BatchNorm

    @Override
    public INDArray batchNorm(INDArray y, INDArray mean, INDArray variance, INDArray gamma, INDArray beta, double eps) {
        return unary(y, yw -> delegate.batchNorm(yw, mean, variance, gamma, beta, eps));
    }

    @Override
    public BatchNormGradients batchNormBackward(
            INDArray y, INDArray g, INDArray mean, INDArray variance, INDArray gamma, double eps) {
        return batchNormGradients(y, g, (yw, gw) -> delegate.batchNormBackward(yw, gw, mean, variance, gamma, eps));
    }

    /** Runs a BatchNorm backward on float32 views of y and g; dL/dy in g's type, the vectors float32. */
    private BatchNormGradients batchNormGradients(
            INDArray y, INDArray g, BiFunction<INDArray, INDArray, BatchNormGradients> kernel) {
        INDArray yw = wide(y);
        INDArray gw = wide(g);
        BatchNormGradients r = kernel.apply(yw, gw);
        done(yw, y);
        done(gw, g);
        return new BatchNormGradients(like(g, r.input()), r.gamma(), r.beta());
    }

    @Override
    public BatchStatistics batchNormTraining(INDArray y, INDArray gamma, INDArray beta, double eps) {
        INDArray yw = wide(y);
        BatchStatistics r = delegate.batchNormTraining(yw, gamma, beta, eps);
        done(yw, y);
        return new BatchStatistics(like(y, r.output()), r.mean(), r.variance());
    }

    @Override
    public BatchNormGradients batchNormTrainingBackward(
            INDArray y, INDArray g, INDArray mean, INDArray variance, INDArray gamma, double eps) {
        return batchNormGradients(
                y, g, (yw, gw) -> delegate.batchNormTrainingBackward(yw, gw, mean, variance, gamma, eps));
    }

    // ---------------------------------------------------------------- pooling

    @Override
    public Pooled maxPool(INDArray x, int kernel, int stride, int pad) {
        INDArray xw = wide(x);
        Pooled r = delegate.maxPool(xw, kernel, stride, pad);
        done(xw, x);
        return new Pooled(like(x, r.output()), r.workspace(), r.inputShape(), r.inputLayout());
    }

    @Override
    public INDArray maxPoolBackward(INDArray x, Pooled pooled, INDArray g, int kernel, int stride, int pad) {
        INDArray xw = pooled.needsInput() ? wide(x) : x; // else not read
        INDArray gw = wide(g);
        INDArray dx = delegate.maxPoolBackward(xw, pooled, gw, kernel, stride, pad);
        done(xw, x);
        done(gw, g);
        return like(g, dx);
    }

    @Override
    public INDArray globalAveragePool(INDArray x) {
        INDArray xw = wide(x);
        INDArray pooled = delegate.globalAveragePool(xw);
        done(xw, x);
        return pooled;
    }

    @Override
    public INDArray globalAveragePoolBackward(INDArray g, long[] logicalShape, Layout layout) {
        return narrow(delegate.globalAveragePoolBackward(g, logicalShape, layout));
    }

    // ---------------------------------------------------------------- per channel

    @Override
    public INDArray channelAffine(INDArray x, INDArray scale, INDArray shift) {
        return unary(x, xw -> delegate.channelAffine(xw, scale, shift));
    }

    @Override
    public void channelScaleInPlace(INDArray x, INDArray scale) {
        inPlace(x, xw -> delegate.channelScaleInPlace(xw, scale));
    }

    @Override
    public INDArray channelSums(INDArray x) {
        INDArray xw = wide(x);
        INDArray sums = delegate.channelSums(xw);
        done(xw, x);
        return sums;
    }

    // ---------------------------------------------------------------- elementwise

    @Override
    public void reluInPlace(INDArray t) {
        inPlace(t, delegate::reluInPlace);
    }

    @Override
    public INDArray reluBackward(INDArray out, INDArray g) {
        INDArray ow = wide(out);
        INDArray r = unary(g, gw -> delegate.reluBackward(ow, gw));
        done(ow, out);
        return r;
    }

    @Override
    public void reluBackwardInPlace(INDArray out, INDArray g) {
        inPlaceWith(out, g, delegate::reluBackwardInPlace);
    }

    /**
     * Runs an in-place kernel on float32 views of a read-only operand {@code a} (not modified) and {@code g}
     * (modified, rounded back when bfloat16): an activation's backward, an addition.
     */
    private void inPlaceWith(INDArray a, INDArray g, BiConsumer<INDArray, INDArray> kernel) {
        INDArray aw = wide(a);
        inPlace(g, gw -> kernel.accept(aw, gw));
        done(aw, a);
    }

    @Override
    public INDArray silu(INDArray z) {
        return unary(z, delegate::silu);
    }

    @Override
    public void siluBackwardInPlace(INDArray z, INDArray g) {
        inPlaceWith(z, g, delegate::siluBackwardInPlace);
    }

    @Override
    public void relu6InPlace(INDArray t) {
        inPlace(t, delegate::relu6InPlace);
    }

    @Override
    public void relu6BackwardInPlace(INDArray out, INDArray g) {
        inPlaceWith(out, g, delegate::relu6BackwardInPlace);
    }

    @Override
    public INDArray hardswish(INDArray z) {
        return unary(z, delegate::hardswish);
    }

    @Override
    public void hardswishBackwardInPlace(INDArray z, INDArray g) {
        inPlaceWith(z, g, delegate::hardswishBackwardInPlace);
    }

    @Override
    public INDArray scaleChannels(INDArray x, INDArray s) {
        INDArray sw = wide(s);
        INDArray r = unary(x, xw -> delegate.scaleChannels(xw, sw));
        done(sw, s);
        return r;
    }

    @Override
    public void scaleSamplesInPlace(INDArray x, INDArray m) {
        inPlaceWith(m, x, (mw, xw) -> delegate.scaleSamplesInPlace(xw, mw));
    }

    @Override
    public void addInPlace(INDArray target, INDArray source, double alpha) {
        inPlaceWith(source, target, (sw, tw) -> delegate.addInPlace(tw, sw, alpha));
    }

    @Override
    public void scaleInPlace(INDArray t, double alpha) {
        inPlace(t, tw -> delegate.scaleInPlace(tw, alpha));
    }

    @Override
    public INDArray copy(INDArray t) {
        if (t.dataType() != DataType.BFLOAT16) {
            return delegate.copy(t);
        }
        return arena.allocate(DataType.BFLOAT16, t.shape()).assign(t);
    }
}
