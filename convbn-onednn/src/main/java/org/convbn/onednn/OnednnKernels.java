package org.convbn.onednn;

import java.util.Map;
import java.util.Set;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.ConvConfig;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.Layout;
import org.convbn.nd4j.kernel.Nd4jKernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * {@link Kernels} on oneDNN for float32 on CPU. Feature maps are computed in the blocked layout oneDNN's convolutions
 * run in on this CPU ({@link OnednnPlatform}: {@code nChw16c} from AVX-512 up, {@code nChw8c} on AVX2), a feature map
 * whose channel count that block does not divide in the largest smaller block that does, else in NCHW. A network
 * that keeps its feature maps so reorders an activation only where the layout changes: weights are reordered, per
 * call, into the layout each primitive wants. Primitives are made once per shape and kept (at most
 * {@value OnednnContext#MAX_PRIMITIVES}, the least recently used freed beyond that, all freed by {@link #close});
 * every buffer a call needs (outputs, reordered weights, oneDNN's scratchpad, pooling's workspace) comes from the
 * arena. Where oneDNN has only its reference implementation for a primitive, another layout, or ND4J's kernels, run
 * instead; {@link #implementations()} lists what ran.
 *
 * <p>The work is in sections, one class each: {@link OnednnConvolutions}, {@link OnednnBatchNorm},
 * {@link OnednnPooling}, {@link OnednnElementwise}, over the state they share ({@link OnednnContext}).
 *
 * <p>oneDNN and ND4J share one OpenMP runtime in the process (both load {@code libgomp.so.1}). Not thread-safe.
 */
@NotThreadSafe
public final class OnednnKernels implements Kernels {
    private final OnednnContext ctx;
    private final OnednnConvolutions convolutions;
    private final OnednnBatchNorm batchNorm;
    private final OnednnPooling pooling;
    private final OnednnElementwise elementwise;

    /**
     * Kernels in the layout this CPU's convolutions run in, or the one {@value OnednnPlatform#LAYOUT_PROPERTY}
     * forces ({@link OnednnPlatform#preferredLayout()}).
     *
     * @param arena where results and temporaries come from
     */
    public OnednnKernels(Arena arena) {
        this(arena, OnednnPlatform.current().preferredLayout());
    }

    /**
     * @param arena where results and temporaries come from
     * @param layout the layout feature maps are kept in where their channel count allows: NCHW, BLOCKED8 or
     *               BLOCKED16 (any of them runs on any CPU; the one oneDNN's convolutions want here is fastest)
     */
    public OnednnKernels(Arena arena, Layout layout) {
        OnednnPlatform.current(); // the instruction-set cap goes in before the first primitive
        Nd4jKernels fallback = new Nd4jKernels(DataType.FLOAT, arena);
        this.ctx = new OnednnContext(arena, layout);
        this.convolutions = new OnednnConvolutions(ctx, fallback);
        this.batchNorm = new OnednnBatchNorm(ctx);
        this.pooling = new OnednnPooling(ctx);
        this.elementwise = new OnednnElementwise(ctx, fallback);
    }

    @Override
    public String name() {
        return OnednnKernelsProvider.NAME;
    }

    @Override
    public DataType dataType() {
        return DataType.FLOAT;
    }

    @Override
    public Arena arena() {
        return ctx.arena();
    }

    @Override
    public Layout preferredLayout(int channels) {
        return ctx.preferredLayout(channels);
    }

    @Override
    public String describe() {
        return describe(ctx.layout());
    }

    /**
     * @return e.g. "onednn (oneDNN 2.5.2, isa avx2, layout BLOCKED8)": kernels keeping feature maps in
     *         {@code layout}
     */
    static String describe(Layout layout) {
        OnednnPlatform p = OnednnPlatform.current();
        return OnednnKernelsProvider.NAME + " (oneDNN " + p.version() + ", isa " + p.isa() + ", layout " + layout + ")";
    }

    /**
     * @return per primitive kind (e.g. "convolution forward_training"), the oneDNN implementations that ran so far
     *         (e.g. "jit:avx2", "jit_1x1:avx2"): the names oneDNN's verbose log gives, read from the primitive
     *         descriptors
     */
    @Override
    public Map<String, Set<String>> implementations() {
        return ctx.implementations();
    }

    /** Frees every primitive made and the stream; the kernels cannot run after. Idempotent. */
    @Override
    public void close() {
        ctx.close();
    }

    @Override
    public INDArray relayout(INDArray t, Layout target) {
        return ctx.relayout(t, target);
    }

    @Override
    public INDArray conv(ConvConfig c, INDArray x, INDArray w, INDArray weightScale, INDArray b, Layout out) {
        return convolutions.conv(c, x, w, weightScale, b, out);
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
        return convolutions.convBackward(c, x, w, weightScale, g, inputGradient, biasGradient, inputLayout);
    }

    @Override
    public INDArray batchNorm(INDArray y, INDArray mean, INDArray variance, INDArray gamma, INDArray beta, double eps) {
        return batchNorm.batchNorm(y, mean, variance, gamma, beta, eps);
    }

    @Override
    public BatchNormGradients batchNormBackward(
            INDArray y, INDArray g, INDArray mean, INDArray variance, INDArray gamma, double eps) {
        return batchNorm.batchNormBackward(y, g, mean, variance, gamma, eps);
    }

    @Override
    public BatchStatistics batchNormTraining(INDArray y, INDArray gamma, INDArray beta, double eps) {
        return batchNorm.batchNormTraining(y, gamma, beta, eps);
    }

    @Override
    public BatchNormGradients batchNormTrainingBackward(
            INDArray y, INDArray g, INDArray mean, INDArray variance, INDArray gamma, double eps) {
        return batchNorm.batchNormTrainingBackward(y, g, mean, variance, gamma, eps);
    }

    @Override
    public Pooled maxPool(INDArray x, int kernel, int stride, int pad) {
        return pooling.maxPool(x, kernel, stride, pad);
    }

    @Override
    public INDArray maxPoolBackward(INDArray x, Pooled pooled, INDArray g, int kernel, int stride, int pad) {
        return pooling.maxPoolBackward(x, pooled, g, kernel, stride, pad);
    }

    @Override
    public INDArray globalAveragePool(INDArray x) {
        return pooling.globalAveragePool(x);
    }

    @Override
    public INDArray globalAveragePoolBackward(INDArray g, long[] logicalShape, Layout layout) {
        return pooling.globalAveragePoolBackward(g, logicalShape, layout);
    }

    @Override
    public void reluInPlace(INDArray t) {
        elementwise.reluInPlace(t);
    }

    @Override
    public INDArray reluBackward(INDArray out, INDArray g) {
        return elementwise.reluBackward(out, g);
    }

    @Override
    public void reluBackwardInPlace(INDArray out, INDArray g) {
        elementwise.reluBackwardInPlace(out, g);
    }

    @Override
    public INDArray silu(INDArray z) {
        return elementwise.silu(z);
    }

    @Override
    public void siluBackwardInPlace(INDArray z, INDArray g) {
        elementwise.siluBackwardInPlace(z, g);
    }

    @Override
    public void relu6InPlace(INDArray t) {
        elementwise.relu6InPlace(t);
    }

    @Override
    public void relu6BackwardInPlace(INDArray out, INDArray g) {
        elementwise.relu6BackwardInPlace(out, g);
    }

    @Override
    public INDArray hardswish(INDArray z) {
        return elementwise.hardswish(z);
    }

    @Override
    public void hardswishBackwardInPlace(INDArray z, INDArray g) {
        elementwise.hardswishBackwardInPlace(z, g);
    }

    @Override
    public INDArray scaleChannels(INDArray x, INDArray s) {
        return elementwise.scaleChannels(x, s);
    }

    @Override
    public void addInPlace(INDArray target, INDArray source, double alpha) {
        elementwise.addInPlace(target, source, alpha);
    }

    @Override
    public void scaleRowsInPlace(INDArray w, INDArray scale) {
        elementwise.scaleRowsInPlace(w, scale);
    }

    @Override
    public INDArray scaleRows(INDArray w, INDArray scale) {
        return elementwise.scaleRows(w, scale);
    }

    @Override
    public INDArray rowDots(INDArray a, INDArray b) {
        return elementwise.rowDots(a, b);
    }

    @Override
    public String toString() {
        return "OnednnKernels[FLOAT, " + ctx.layout() + ", " + ctx.arena() + "]";
    }
}
