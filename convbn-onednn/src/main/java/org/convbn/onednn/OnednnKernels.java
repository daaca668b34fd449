package org.convbn.onednn;

import net.jcip.annotations.NotThreadSafe;

import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_ATTR_OUTPUT_SCALES;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_BIAS;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_BIAS;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_DST;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_SCALE;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_SHIFT;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_SRC;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_WEIGHTS;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DST;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_MEAN;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SCALE;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SCRATCHPAD;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SHIFT;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SRC;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SRC_0;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SRC_1;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_VARIANCE;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_WEIGHTS;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_WORKSPACE;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.function.Supplier;

import org.bytedeco.dnnl.batch_normalization_backward;
import org.bytedeco.dnnl.batch_normalization_forward;
import org.bytedeco.dnnl.binary;
import org.bytedeco.dnnl.convolution_backward_data;
import org.bytedeco.dnnl.convolution_backward_weights;
import org.bytedeco.dnnl.convolution_forward;
import org.bytedeco.dnnl.eltwise_backward;
import org.bytedeco.dnnl.eltwise_forward;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.pooling_backward;
import org.bytedeco.dnnl.pooling_forward;
import org.bytedeco.dnnl.primitive_attr;
import org.bytedeco.dnnl.reduction;
import org.bytedeco.dnnl.reorder;
import org.bytedeco.dnnl.stream;
import org.bytedeco.dnnl.global.dnnl.algorithm;
import org.bytedeco.dnnl.global.dnnl.normalization_flags;
import org.bytedeco.dnnl.global.dnnl.prop_kind;
import org.convbn.core.ConvConfig;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.Layout;
import org.convbn.nd4j.kernel.Nd4jKernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@link Kernels} on oneDNN for float32 on CPU. Feature maps are computed in the blocked layout oneDNN's convolutions
 * run in on this CPU ({@link OnednnPlatform}: {@code nChw16c} from AVX-512 up, {@code nChw8c} on AVX2), a feature map
 * whose channel count that block does not divide in the largest smaller block that does, else in NCHW. A network
 * that keeps its feature maps so reorders an activation only where the layout changes: weights are reordered, per
 * call, into the layout each primitive wants. Primitives are made once per shape and kept (at most
 * {@value #MAX_PRIMITIVES}, the least recently used freed beyond that, all freed by {@link #close}); every buffer a
 * call needs (outputs, reordered weights, oneDNN's scratchpad, pooling's workspace) comes from the arena. No
 * primitive runs oneDNN's reference implementation where an optimised one exists for another layout or a per-sample
 * split of the same work; {@link #implementations()} lists what ran.
 *
 * <p>oneDNN and ND4J share one OpenMP runtime in the process (both load {@code libgomp.so.1}). Not thread-safe.
 */
@NotThreadSafe
public final class OnednnKernels implements Kernels {
    /** Primitives kept at most: a network's distinct shapes need a few hundred (ResNet-50 ~300, EfficientNet ~600). */
    static final int MAX_PRIMITIVES = 4096;
    private static final Logger LOG = LoggerFactory.getLogger(OnednnKernels.class);

    private final Arena arena;
    private final Layout layout;
    private final stream stream = new stream(Dnnl.ENGINE);
    private final PrimitiveCache prepared = new PrimitiveCache(MAX_PRIMITIVES);
    private final Set<Key> unsupported = new HashSet<>();
    /** Per primitive kind (e.g. "convolution backward_weights"), the implementations made, e.g. "jit:avx2". */
    private final Map<String, Set<String>> implementations = new TreeMap<>();
    private final Nd4jKernels fallback;
    private boolean closed;

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
        this.arena = arena;
        this.layout = layout;
        this.fallback = new Nd4jKernels(DataType.FLOAT, arena);
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
        return arena;
    }

    @Override
    public Layout preferredLayout(int channels) {
        return Layout.largestFitting(layout, channels);
    }

    @Override
    public String describe() {
        OnednnPlatform p = OnednnPlatform.current();
        return name() + " (oneDNN " + p.version() + ", isa " + p.isa() + ", layout " + layout + ")";
    }

    /**
     * @return per primitive kind (e.g. "convolution forward_training"), the oneDNN implementations this set has made
     *         so far (e.g. "jit:avx2", "jit_1x1:avx2"): the names oneDNN's verbose log gives, read from the
     *         primitive descriptors
     */
    @Override
    public Map<String, Set<String>> implementations() {
        Map<String, Set<String>> copy = new TreeMap<>();
        implementations.forEach((k, v) -> copy.put(k, new TreeSet<>(v)));
        return copy;
    }

    /**
     * Records the implementation of a primitive about to run for the first time; a reference one (orders of
     * magnitude slower than a jit one) is logged at WARN.
     */
    private void record(Dnnl.Prepared p) {
        p.ran = true;
        if (implementations.computeIfAbsent(p.kind, k -> new TreeSet<>()).add(p.implementation) && p.isReference()) {
            LOG.warn("oneDNN runs its reference implementation {} for {} ({}): expect it to be slow", p.implementation,
                    p.kind, p.problem);
        }
    }

    private Dnnl.Prepared prepared(Key key, Supplier<Dnnl.Prepared> make) {
        checkOpen();
        Dnnl.Prepared p = prepared.get(key);
        if (p == null) {
            p = make.get();
            prepared.put(key, p);
        }
        return p;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("these oneDNN kernels are closed");
        }
    }

    /** Frees every primitive made and the stream; the kernels cannot run after. Idempotent. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            prepared.clear();
            stream.close();
        }
    }

    /** Binds the scratchpad (if the primitive needs one), runs, and gives the scratchpad back. */
    private void run(Dnnl.Prepared p) {
        if (!p.ran) {
            record(p);
        }
        INDArray scratch = null;
        if (p.scratchpadBytes > 0) {
            scratch = buffer(p.scratchpadBytes);
            p.bind(DNNL_ARG_SCRATCHPAD, scratch);
        }
        try {
            p.run(stream);
        } finally {
            arena.release(scratch);
        }
    }

    /**
     * @return a float array of at least {@code bytes} bytes from the arena: also for memory oneDNN treats as raw
     *         bytes (scratchpads, pooling workspaces), so that all of a step's buffers share one pool
     */
    private INDArray buffer(long bytes) {
        return arena.allocate(DataType.FLOAT, (bytes + 3) / 4);
    }

    /** @return t itself when it is dense ('c' order, contiguous; any offset), else a dense copy from the arena */
    private INDArray dense(INDArray t) {
        if (isDense(t)) {
            return t;
        }
        INDArray c = arena.allocate(t.dataType(), t.shape());
        c.assign(t);
        return c;
    }

    /** Dense: 'c' order and contiguous, so that its first element's address and the shape describe it (the address
     *  of a view starts at its offset: {@code data().addressPointer()}). */
    static boolean isDense(INDArray t) {
        if (t.ordering() != 'c' && t.rank() > 1) {
            return false;
        }
        long expected = 1;
        for (int i = t.rank() - 1; i >= 0; i--) {
            if (t.size(i) != 1 && t.stride(i) != expected) {
                return false;
            }
            expected *= t.size(i);
        }
        return true;
    }

    private void releaseIfCopy(INDArray copy, INDArray original) {
        if (copy != original) {
            arena.release(copy);
        }
    }

    /** @return t when it is a dense feature map in {@code layout}, else a dense copy in it from the arena */
    private INDArray as(INDArray t, Layout layout) {
        return Layout.of(t) == layout ? dense(t) : relayout(t, layout);
    }

    /** @return t (owned, in {@code from}) in layout {@code to}, giving t back when converted */
    private INDArray moveTo(INDArray t, Layout to) {
        if (Layout.of(t) == to) {
            return t;
        }
        INDArray r = relayout(t, to);
        arena.release(t);
        return r;
    }

    @Override
    public INDArray relayout(INDArray t, Layout target) {
        long[] logical = Layout.logicalShape(t);
        Layout from = Layout.of(t);
        INDArray out = arena.allocate(DataType.FLOAT, target.physicalShape(logical));
        INDArray src = dense(t);
        Dnnl.Prepared p = prepared(new Key("reorder", dims(logical), from, target), () -> {
            memory.desc s = Dnnl.featureMap(logical, from);
            memory.desc d = Dnnl.featureMap(logical, target);
            reorder.primitive_desc pd = new reorder.primitive_desc(Dnnl.ENGINE, s, Dnnl.ENGINE, d);
            return new Dnnl.Prepared(new reorder(pd), pd).arg(DNNL_ARG_SRC, s).arg(DNNL_ARG_DST, d);
        });
        p.bind(DNNL_ARG_SRC, src);
        p.bind(DNNL_ARG_DST, out);
        run(p);
        releaseIfCopy(src, t);
        return out;
    }

    // ---------------------------------------------------------------- convolution

    /** The geometry of a conv on an input of logical shape {@code xs}. */
    private record Geometry(long[] src, long[] weights, long[] dst, long[] strides, long[] dilates, long[] padL,
                            long[] padR, Layout srcLayout, Layout dstLayout) {
        static Geometry of(ConvConfig c, long[] xs, Layout srcLayout, Layout dstLayout) {
            long[] ys = c.outputShape(xs);
            int h = (int) xs[2];
            int w = (int) xs[3];
            long pt = c.padTop(h);
            long pl = c.padLeft(w);
            long pb = Math.max(0, (ys[2] - 1) * c.strideH() + (long) (c.kernelH() - 1) * c.dilationH() + 1 - h - pt);
            long pr = Math.max(0, (ys[3] - 1) * c.strideW() + (long) (c.kernelW() - 1) * c.dilationW() + 1 - w - pl);
            long[] weights = c.groups() == 1
                    ? new long[] {c.outChannels(), c.inChannels(), c.kernelH(), c.kernelW()}
                    : new long[] {c.groups(), c.outChannelsPerGroup(), c.inChannelsPerGroup(), c.kernelH(), c.kernelW()};
            return new Geometry(xs, weights, ys, new long[] {c.strideH(), c.strideW()},
                    new long[] {c.dilationH() - 1, c.dilationW() - 1}, new long[] {pt, pl}, new long[] {pb, pr},
                    srcLayout, dstLayout);
        }

        memory.desc srcDesc() {
            return Dnnl.featureMap(src, srcLayout);
        }

        memory.desc dstDesc() {
            return Dnnl.featureMap(dst, dstLayout);
        }

        memory.desc anyWeights() {
            return Dnnl.desc(weights, memory.format_tag.any);
        }

        memory.desc userWeights() {
            return Dnnl.desc(weights, weights.length == 4 ? memory.format_tag.oihw : memory.format_tag.goihw);
        }
    }

    /**
     * The layouts to try for a conv primitive's input and output, best first: the preferred ones (blocked, where
     * oneDNN's direct kernels run); where those differ in block (e.g. 24 channels in 8-blocks into 32 in 16-blocks),
     * both in the largest block that fits both; then plain NCHW (where oneDNN has GEMM-based kernels for the shapes
     * its direct kernels refuse, e.g. a 3x3 backward on a 2x2 map).
     */
    private List<Layout[]> layoutChoices(ConvConfig c) {
        List<Layout[]> choices = new ArrayList<>();
        Layout in = preferredLayout(c.inChannels());
        Layout out = preferredLayout(c.outChannels());
        choices.add(new Layout[] {in, out});
        Layout common = Layout.largestFitting(Layout.largestFitting(layout, c.inChannels()), c.outChannels());
        if (in.isBlocked() && out.isBlocked() && in != out && common.isBlocked()) {
            choices.add(new Layout[] {common, common});
        }
        if (in != Layout.NCHW || out != Layout.NCHW) {
            choices.add(new Layout[] {Layout.NCHW, Layout.NCHW});
        }
        return choices;
    }

    /**
     * Makes a conv primitive on the first geometry for which oneDNN has an optimised implementation (not its
     * reference one, which is orders of magnitude slower), remembering which; null when there is none (the ND4J
     * kernels run that conv then).
     */
    private Dnnl.Prepared convPrimitive(String kind, ConvConfig c, long[] xs, boolean bias,
                                        Function<Geometry, Dnnl.Prepared> make) {
        checkOpen();
        Key key = new Key(kind, dims(xs), c, bias);
        if (unsupported.contains(key)) {
            return null;
        }
        Dnnl.Prepared p = prepared.get(key);
        if (p != null) {
            return p;
        }
        for (Layout[] l : layoutChoices(c)) {
            Geometry g = Geometry.of(c, xs, l[0], l[1]);
            try {
                p = make.apply(g);
            } catch (RuntimeException e) {
                continue; // no implementation for this geometry
            }
            if (!p.isReference()) {
                p.srcLayout = g.srcLayout;
                p.dstLayout = g.dstLayout;
                prepared.put(key, p);
                return p;
            }
            p.close();
        }
        unsupported.add(key);
        LOG.warn("oneDNN has no optimised {} for {} on input {}: ND4J's kernels run it", kind, c, Arrays.toString(xs));
        return null;
    }

    private convolution_forward.primitive_desc forwardDesc(Geometry g, boolean bias, primitive_attr attr) {
        convolution_forward.desc d = bias
                ? new convolution_forward.desc(prop_kind.forward_training, algorithm.convolution_direct, g.srcDesc(),
                        g.anyWeights(), Dnnl.vector(g.dst[1]), g.dstDesc(), g.strides, g.dilates, g.padL, g.padR)
                : new convolution_forward.desc(prop_kind.forward_training, algorithm.convolution_direct, g.srcDesc(),
                        g.anyWeights(), g.dstDesc(), g.strides, g.dilates, g.padL, g.padR);
        return new convolution_forward.primitive_desc(d, attr, Dnnl.ENGINE);
    }

    /**
     * A reorder of the user's OIHW (GOIHW) weights into {@code target}, or back; {@code scaled} multiplies each
     * output channel by a scale given at run time (the TUNE fold, applied while reordering).
     */
    private Dnnl.Prepared weightReorder(Geometry g, memory.desc target, boolean toUser, boolean scaled) {
        memory.desc user = g.userWeights();
        memory.desc s = toUser ? target : user;
        memory.desc d = toUser ? user : target;
        primitive_attr attr = new primitive_attr();
        if (scaled) {
            // dims 0 (and 1 of grouped GOIHW weights) together enumerate the output channels
            attr.set_output_scales(g.weights.length == 4 ? 1 : 3, new float[] {RUNTIME_SCALE});
        }
        reorder.primitive_desc pd = new reorder.primitive_desc(Dnnl.ENGINE, s, Dnnl.ENGINE, d, attr, false);
        Dnnl.Prepared p = new Dnnl.Prepared(new reorder(pd), pd).arg(DNNL_ARG_SRC, s).arg(DNNL_ARG_DST, d);
        if (scaled) {
            p.arg(DNNL_ARG_ATTR_OUTPUT_SCALES, Dnnl.vector(g.dst[1]));
        }
        return p;
    }

    /** oneDNN's marker for a scale given at execution. */
    private static final float RUNTIME_SCALE = (float) org.bytedeco.dnnl.global.dnnl.DNNL_RUNTIME_F32_VAL();

    private Dnnl.Prepared convForward(ConvConfig c, long[] xs, boolean bias) {
        return convPrimitive("conv fwd", c, xs, bias, g -> {
            convolution_forward.primitive_desc pd = forwardDesc(g, bias, Dnnl.userScratchpad());
            Dnnl.Prepared p = new Dnnl.Prepared(new convolution_forward(pd), pd).arg(DNNL_ARG_SRC, pd.src_desc())
                    .arg(DNNL_ARG_WEIGHTS, pd.weights_desc()).arg(DNNL_ARG_DST, pd.dst_desc());
            if (bias) {
                p.arg(DNNL_ARG_BIAS, pd.bias_desc());
            }
            p.weightsReorder = weightReorder(g, pd.weights_desc(), false, false);
            p.scaledWeightsReorder = weightReorder(g, pd.weights_desc(), false, true);
            return p;
        });
    }

    private Dnnl.Prepared convBackwardData(ConvConfig c, long[] xs) {
        return convPrimitive("conv bwd data", c, xs, false, g -> {
            convolution_forward.primitive_desc hint = forwardDesc(g, false, Dnnl.userScratchpad());
            convolution_backward_data.desc d = new convolution_backward_data.desc(algorithm.convolution_direct,
                    g.srcDesc(), g.anyWeights(), g.dstDesc(), g.strides, g.dilates, g.padL, g.padR);
            convolution_backward_data.primitive_desc pd = new convolution_backward_data.primitive_desc(d,
                    Dnnl.userScratchpad(), Dnnl.ENGINE, hint);
            Dnnl.Prepared p = new Dnnl.Prepared(new convolution_backward_data(pd), pd)
                    .arg(DNNL_ARG_DIFF_DST, pd.diff_dst_desc()).arg(DNNL_ARG_WEIGHTS, pd.weights_desc())
                    .arg(DNNL_ARG_DIFF_SRC, pd.diff_src_desc());
            p.weightsReorder = weightReorder(g, pd.weights_desc(), false, false);
            p.scaledWeightsReorder = weightReorder(g, pd.weights_desc(), false, true);
            return p;
        });
    }

    private Dnnl.Prepared convBackwardWeights(ConvConfig c, long[] xs, boolean bias) {
        return convPrimitive("conv bwd weights", c, xs, bias, g -> {
            convolution_forward.primitive_desc hint = forwardDesc(g, bias, Dnnl.userScratchpad());
            convolution_backward_weights.desc d = bias
                    ? new convolution_backward_weights.desc(algorithm.convolution_direct, g.srcDesc(), g.anyWeights(),
                            Dnnl.vector(g.dst[1]), g.dstDesc(), g.strides, g.dilates, g.padL, g.padR)
                    : new convolution_backward_weights.desc(algorithm.convolution_direct, g.srcDesc(), g.anyWeights(),
                            g.dstDesc(), g.strides, g.dilates, g.padL, g.padR);
            convolution_backward_weights.primitive_desc pd = new convolution_backward_weights.primitive_desc(d,
                    Dnnl.userScratchpad(), Dnnl.ENGINE, hint);
            Dnnl.Prepared p = new Dnnl.Prepared(new convolution_backward_weights(pd), pd)
                    .arg(DNNL_ARG_SRC, pd.src_desc()).arg(DNNL_ARG_DIFF_DST, pd.diff_dst_desc())
                    .arg(DNNL_ARG_DIFF_WEIGHTS, pd.diff_weights_desc());
            if (bias) {
                p.arg(DNNL_ARG_DIFF_BIAS, pd.diff_bias_desc());
            }
            p.weightsReorder = weightReorder(g, pd.diff_weights_desc(), true, false);
            return p;
        });
    }

    /**
     * Reorders plain weights into a primitive's layout, each output channel scaled when a scale is given: a new
     * arena buffer.
     */
    private INDArray reorderWeights(Dnnl.Prepared conv, INDArray w, INDArray scale) {
        Dnnl.Prepared r = scale == null ? conv.weightsReorder : conv.scaledWeightsReorder;
        INDArray src = dense(w);
        INDArray out = buffer(r.bytes(DNNL_ARG_DST));
        r.bind(DNNL_ARG_SRC, src);
        r.bind(DNNL_ARG_DST, out);
        INDArray scales = null;
        if (scale != null) {
            scales = dense(scale);
            r.bind(DNNL_ARG_ATTR_OUTPUT_SCALES, scales);
        }
        run(r);
        releaseIfCopy(src, w);
        releaseIfCopy(scales, scale);
        return out;
    }

    // Outputs are taken from the arena before the temporaries (reordered weights, the scratchpad), so that an output
    // lies next to the arrays made before it and a temporary's block, freed at once, is the next output's.

    @Override
    public INDArray conv(ConvConfig c, INDArray x, INDArray w, INDArray weightScale, INDArray b, Layout out) {
        long[] xs = Layout.logicalShape(x);
        Dnnl.Prepared p = convForward(c, xs, b != null);
        if (p == null) {
            return fallback.conv(c, x, w, weightScale, b, out);
        }
        INDArray y = arena.allocate(DataType.FLOAT, p.dstLayout.physicalShape(c.outputShape(xs)));
        INDArray src = as(x, p.srcLayout);
        INDArray weights = reorderWeights(p, w, weightScale);
        INDArray bias = b == null ? null : dense(b);
        p.bind(DNNL_ARG_SRC, src);
        p.bind(DNNL_ARG_WEIGHTS, weights);
        if (bias != null) {
            p.bind(DNNL_ARG_BIAS, bias);
        }
        p.bind(DNNL_ARG_DST, y);
        run(p);
        releaseIfCopy(bias, b);
        arena.release(weights);
        releaseIfCopy(src, x);
        return moveTo(y, out);
    }

    @Override
    public ConvGradients convBackward(ConvConfig c, INDArray x, INDArray w, INDArray weightScale, INDArray g,
                                      boolean inputGradient, boolean biasGradient, Layout inputLayout) {
        long[] xs = Layout.logicalShape(x);
        Dnnl.Prepared data = inputGradient ? convBackwardData(c, xs) : null;
        Dnnl.Prepared weights = convBackwardWeights(c, xs, biasGradient);
        if (weights == null || inputGradient && data == null) {
            return fallback.convBackward(c, x, w, weightScale, g, inputGradient, biasGradient, inputLayout);
        }
        INDArray dw = arena.allocate(DataType.FLOAT, w.shape());
        INDArray db = biasGradient ? arena.allocate(DataType.FLOAT, c.outChannels()) : null;
        INDArray dx = null;
        if (inputGradient) {
            dx = arena.allocate(DataType.FLOAT, data.srcLayout.physicalShape(xs));
            INDArray diffDst = as(g, data.dstLayout);
            INDArray wr = reorderWeights(data, w, weightScale);
            data.bind(DNNL_ARG_DIFF_DST, diffDst);
            data.bind(DNNL_ARG_WEIGHTS, wr);
            data.bind(DNNL_ARG_DIFF_SRC, dx);
            run(data);
            arena.release(wr);
            releaseIfCopy(diffDst, g);
            dx = moveTo(dx, inputLayout);
        }
        INDArray dwPrimitive = buffer(weights.bytes(DNNL_ARG_DIFF_WEIGHTS));
        INDArray diffDst = as(g, weights.dstLayout);
        INDArray src = as(x, weights.srcLayout);
        weights.bind(DNNL_ARG_SRC, src);
        weights.bind(DNNL_ARG_DIFF_DST, diffDst);
        weights.bind(DNNL_ARG_DIFF_WEIGHTS, dwPrimitive);
        if (db != null) {
            weights.bind(DNNL_ARG_DIFF_BIAS, db);
        }
        run(weights);
        releaseIfCopy(src, x);
        releaseIfCopy(diffDst, g);
        weights.weightsReorder.bind(DNNL_ARG_SRC, dwPrimitive);
        weights.weightsReorder.bind(DNNL_ARG_DST, dw);
        run(weights.weightsReorder);
        arena.release(dwPrimitive);
        return new ConvGradients(dx, dw, db);
    }

    // ---------------------------------------------------------------- BatchNorm

    private static int flags(boolean globalStats, boolean affine) {
        int f = globalStats ? normalization_flags.use_global_stats.value : 0;
        return affine ? f | normalization_flags.use_scale.value | normalization_flags.use_shift.value : f;
    }

    private batch_normalization_forward.primitive_desc bnForwardDesc(memory.desc data, double eps, int flags,
                                                                     prop_kind prop) {
        batch_normalization_forward.desc d = new batch_normalization_forward.desc(prop.value, data, (float) eps,
                flags);
        return new batch_normalization_forward.primitive_desc(d, Dnnl.userScratchpad(), Dnnl.ENGINE);
    }

    private Dnnl.Prepared bnForward(INDArray y, double eps, boolean affine, boolean training) {
        long[] ys = Layout.logicalShape(y);
        Layout layout = Layout.of(y);
        Key key = new Key("bn fwd", dims(ys), layout, eps, affine, training);
        return prepared(key, () -> {
            memory.desc data = Dnnl.featureMap(ys, layout);
            batch_normalization_forward.primitive_desc pd = bnForwardDesc(data, eps, flags(!training, affine),
                    training ? prop_kind.forward_training : prop_kind.forward_inference);
            Dnnl.Prepared p = new Dnnl.Prepared(new batch_normalization_forward(pd), pd).arg(DNNL_ARG_SRC, data)
                    .arg(DNNL_ARG_DST, data).arg(DNNL_ARG_MEAN, Dnnl.vector(ys[1]))
                    .arg(DNNL_ARG_VARIANCE, Dnnl.vector(ys[1]));
            if (affine) {
                p.arg(DNNL_ARG_SCALE, Dnnl.vector(ys[1])).arg(DNNL_ARG_SHIFT, Dnnl.vector(ys[1]));
            }
            return p;
        });
    }

    private Dnnl.Prepared bnBackward(INDArray y, double eps, boolean affine, boolean training) {
        long[] ys = Layout.logicalShape(y);
        Layout layout = Layout.of(y);
        Key key = new Key("bn bwd", dims(ys), layout, eps, affine, training);
        return prepared(key, () -> {
            memory.desc data = Dnnl.featureMap(ys, layout);
            int flags = flags(!training, affine);
            batch_normalization_forward.primitive_desc hint = bnForwardDesc(data, eps, flags,
                    training ? prop_kind.forward_training : prop_kind.forward_inference);
            batch_normalization_backward.desc d = new batch_normalization_backward.desc(
                    (affine ? prop_kind.backward : prop_kind.backward_data).value, data, data, (float) eps, flags);
            batch_normalization_backward.primitive_desc pd = new batch_normalization_backward.primitive_desc(d,
                    Dnnl.userScratchpad(), Dnnl.ENGINE, hint);
            Dnnl.Prepared p = new Dnnl.Prepared(new batch_normalization_backward(pd), pd).arg(DNNL_ARG_SRC, data)
                    .arg(DNNL_ARG_DIFF_DST, data).arg(DNNL_ARG_DIFF_SRC, data)
                    .arg(DNNL_ARG_MEAN, Dnnl.vector(ys[1])).arg(DNNL_ARG_VARIANCE, Dnnl.vector(ys[1]));
            if (affine) {
                p.arg(DNNL_ARG_SCALE, Dnnl.vector(ys[1])).arg(DNNL_ARG_SHIFT, Dnnl.vector(ys[1]))
                        .arg(DNNL_ARG_DIFF_SCALE, Dnnl.vector(ys[1])).arg(DNNL_ARG_DIFF_SHIFT, Dnnl.vector(ys[1]));
            }
            return p;
        });
    }

    /** Binds small per-channel vectors (copied when not dense); returns the copies to give back. */
    private INDArray[] bindVectors(Dnnl.Prepared p, int[] args, INDArray... vectors) {
        INDArray[] copies = new INDArray[vectors.length];
        for (int i = 0; i < vectors.length; i++) {
            if (vectors[i] == null) {
                continue;
            }
            INDArray d = dense(vectors[i]);
            p.bind(args[i], d);
            copies[i] = d == vectors[i] ? null : d;
        }
        return copies;
    }

    @Override
    public INDArray batchNorm(INDArray y, INDArray mean, INDArray variance, INDArray gamma, INDArray beta,
                              double eps) {
        INDArray src = dense(y);
        Dnnl.Prepared p = bnForward(src, eps, gamma != null, false);
        INDArray z = arena.allocate(DataType.FLOAT, src.shape());
        p.bind(DNNL_ARG_SRC, src);
        p.bind(DNNL_ARG_DST, z);
        INDArray[] copies = bindVectors(p, new int[] {DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_SCALE, DNNL_ARG_SHIFT},
                mean, variance, gamma, beta);
        run(p);
        arena.release(copies);
        releaseIfCopy(src, y);
        return z;
    }

    @Override
    public BatchNormGradients batchNormBackward(INDArray y, INDArray g, INDArray mean, INDArray variance,
                                                INDArray gamma, double eps) {
        return bnBackward(y, g, mean, variance, gamma, eps, false);
    }

    @Override
    public BatchStatistics batchNormTraining(INDArray y, INDArray gamma, INDArray beta, double eps) {
        INDArray src = dense(y);
        long c = Layout.logicalShape(y)[1];
        Dnnl.Prepared p = bnForward(src, eps, gamma != null, true);
        INDArray z = arena.allocate(DataType.FLOAT, src.shape());
        INDArray mean = arena.allocate(DataType.FLOAT, c);
        INDArray var = arena.allocate(DataType.FLOAT, c);
        p.bind(DNNL_ARG_SRC, src);
        p.bind(DNNL_ARG_DST, z);
        p.bind(DNNL_ARG_MEAN, mean);
        p.bind(DNNL_ARG_VARIANCE, var);
        INDArray[] copies = bindVectors(p, new int[] {DNNL_ARG_SCALE, DNNL_ARG_SHIFT}, gamma, beta);
        run(p);
        arena.release(copies);
        releaseIfCopy(src, y);
        return new BatchStatistics(z, mean, var);
    }

    @Override
    public BatchNormGradients batchNormTrainingBackward(INDArray y, INDArray g, INDArray mean, INDArray variance,
                                                        INDArray gamma, double eps) {
        return bnBackward(y, g, mean, variance, gamma, eps, true);
    }

    private BatchNormGradients bnBackward(INDArray y, INDArray g, INDArray mean, INDArray variance, INDArray gamma,
                                          double eps, boolean training) {
        INDArray src = as(y, Layout.of(g));
        INDArray diffDst = dense(g);
        long c = Layout.logicalShape(y)[1];
        boolean affine = gamma != null;
        Dnnl.Prepared p = bnBackward(diffDst, eps, affine, training);
        INDArray dy = arena.allocate(DataType.FLOAT, diffDst.shape());
        INDArray dgamma = affine ? arena.allocate(DataType.FLOAT, c) : null;
        INDArray dbeta = affine ? arena.allocate(DataType.FLOAT, c) : null;
        p.bind(DNNL_ARG_SRC, src);
        p.bind(DNNL_ARG_DIFF_DST, diffDst);
        p.bind(DNNL_ARG_DIFF_SRC, dy);
        INDArray shift = affine ? arena.allocate(DataType.FLOAT, c) : null; // read by oneDNN, unused by the math
        INDArray[] copies = bindVectors(p, new int[] {DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_SCALE,
            DNNL_ARG_SHIFT, DNNL_ARG_DIFF_SCALE, DNNL_ARG_DIFF_SHIFT}, mean, variance, gamma, shift, dgamma, dbeta);
        run(p);
        arena.release(copies);
        arena.release(shift);
        releaseIfCopy(src, y);
        releaseIfCopy(diffDst, g);
        return new BatchNormGradients(dy, dgamma, dbeta);
    }

    // ---------------------------------------------------------------- pooling

    private long[] poolPadR(long[] xs, long[] ys, int kernel, int stride, int pad) {
        return new long[] {Math.max(0, (ys[2] - 1) * stride + kernel - xs[2] - pad),
            Math.max(0, (ys[3] - 1) * stride + kernel - xs[3] - pad)};
    }

    private pooling_forward.primitive_desc poolDesc(memory.desc src, memory.desc dst, algorithm alg, long[] kernel,
                                                    long[] strides, long[] padL, long[] padR) {
        pooling_forward.desc d = new pooling_forward.desc(prop_kind.forward_training, alg, src, dst, strides, kernel,
                padL, padR);
        return new pooling_forward.primitive_desc(d, Dnnl.userScratchpad(), Dnnl.ENGINE);
    }

    @Override
    public Pooled maxPool(INDArray x, int kernel, int stride, int pad) {
        long[] xs = Layout.logicalShape(x);
        long[] ys = {xs[0], xs[1], (xs[2] + 2L * pad - kernel) / stride + 1, (xs[3] + 2L * pad - kernel) / stride + 1};
        Layout layout = Layout.of(x);
        long[] k = {kernel, kernel};
        long[] s = {stride, stride};
        long[] pl = {pad, pad};
        long[] pr = poolPadR(xs, ys, kernel, stride, pad);
        Dnnl.Prepared p = prepared(new Key("maxpool fwd", dims(xs), layout, kernel, stride, pad),
                () -> {
                    pooling_forward.primitive_desc pd = poolDesc(Dnnl.featureMap(xs, layout),
                            Dnnl.featureMap(ys, layout), algorithm.pooling_max, k, s, pl, pr);
                    return new Dnnl.Prepared(new pooling_forward(pd), pd).arg(DNNL_ARG_SRC, pd.src_desc())
                            .arg(DNNL_ARG_DST, pd.dst_desc()).arg(DNNL_ARG_WORKSPACE, pd.workspace_desc());
                });
        INDArray src = dense(x);
        INDArray y = arena.allocate(DataType.FLOAT, layout.physicalShape(ys));
        INDArray ws = buffer(p.bytes(DNNL_ARG_WORKSPACE)); // opaque bytes, in the float pool with everything else
        p.bind(DNNL_ARG_SRC, src);
        p.bind(DNNL_ARG_DST, y);
        p.bind(DNNL_ARG_WORKSPACE, ws);
        run(p);
        releaseIfCopy(src, x);
        return new Pooled(y, ws, xs, layout);
    }

    @Override
    public INDArray maxPoolBackward(INDArray x, Pooled pooled, INDArray g, int kernel, int stride, int pad) {
        long[] xs = pooled.inputShape(); // x itself is not read: the workspace holds the argmax
        long[] ys = Layout.logicalShape(pooled.output());
        Layout layout = pooled.inputLayout();
        long[] k = {kernel, kernel};
        long[] s = {stride, stride};
        long[] pl = {pad, pad};
        long[] pr = poolPadR(xs, ys, kernel, stride, pad);
        Dnnl.Prepared p = prepared(new Key("maxpool bwd", dims(xs), layout, kernel, stride, pad),
                () -> {
                    memory.desc src = Dnnl.featureMap(xs, layout);
                    memory.desc dst = Dnnl.featureMap(ys, layout);
                    pooling_forward.primitive_desc hint = poolDesc(src, dst, algorithm.pooling_max, k, s, pl, pr);
                    pooling_backward.desc d = new pooling_backward.desc(algorithm.pooling_max, src, dst, s, k, pl, pr);
                    pooling_backward.primitive_desc pd = new pooling_backward.primitive_desc(d, Dnnl.userScratchpad(),
                            Dnnl.ENGINE, hint);
                    return new Dnnl.Prepared(new pooling_backward(pd), pd).arg(DNNL_ARG_DIFF_DST, pd.diff_dst_desc())
                            .arg(DNNL_ARG_DIFF_SRC, pd.diff_src_desc()).arg(DNNL_ARG_WORKSPACE, pd.workspace_desc());
                });
        INDArray diffDst = as(g, layout);
        INDArray dx = arena.allocate(DataType.FLOAT, layout.physicalShape(xs));
        p.bind(DNNL_ARG_DIFF_DST, diffDst);
        p.bind(DNNL_ARG_DIFF_SRC, dx);
        p.bind(DNNL_ARG_WORKSPACE, pooled.workspace());
        run(p);
        releaseIfCopy(diffDst, g);
        return dx;
    }

    @Override
    public INDArray globalAveragePool(INDArray x) {
        long[] xs = Layout.logicalShape(x);
        Layout layout = Layout.of(x);
        long[] ys = {xs[0], xs[1], 1, 1};
        Dnnl.Prepared p = prepared(new Key("avgpool fwd", dims(xs), layout), () -> {
            pooling_forward.primitive_desc pd = poolDesc(Dnnl.featureMap(xs, layout), Dnnl.featureMap(ys, layout),
                    algorithm.pooling_avg_exclude_padding, new long[] {xs[2], xs[3]}, new long[] {1, 1},
                    new long[] {0, 0}, new long[] {0, 0});
            return new Dnnl.Prepared(new pooling_forward(pd), pd).arg(DNNL_ARG_SRC, pd.src_desc())
                    .arg(DNNL_ARG_DST, pd.dst_desc());
        });
        INDArray src = dense(x);
        // [N, C, 1, 1] in either layout lies in memory as a plain [N, C] (C divisible by 8 when blocked).
        INDArray y = arena.allocate(DataType.FLOAT, xs[0], xs[1]);
        p.bind(DNNL_ARG_SRC, src);
        p.bind(DNNL_ARG_DST, y);
        run(p);
        releaseIfCopy(src, x);
        return y;
    }

    @Override
    public INDArray globalAveragePoolBackward(INDArray g, long[] logicalShape, Layout layout) {
        long[] xs = logicalShape.clone();
        long[] ys = {xs[0], xs[1], 1, 1};
        Dnnl.Prepared p = prepared(new Key("avgpool bwd", dims(xs), layout), () -> {
            memory.desc src = Dnnl.featureMap(xs, layout);
            memory.desc dst = Dnnl.featureMap(ys, layout);
            long[] k = {xs[2], xs[3]};
            long[] zero = {0, 0};
            long[] one = {1, 1};
            pooling_forward.primitive_desc hint = poolDesc(src, dst, algorithm.pooling_avg_exclude_padding, k, one,
                    zero, zero);
            pooling_backward.desc d = new pooling_backward.desc(algorithm.pooling_avg_exclude_padding, src, dst, one,
                    k, zero, zero);
            pooling_backward.primitive_desc pd = new pooling_backward.primitive_desc(d, Dnnl.userScratchpad(),
                    Dnnl.ENGINE, hint);
            return new Dnnl.Prepared(new pooling_backward(pd), pd).arg(DNNL_ARG_DIFF_DST, pd.diff_dst_desc())
                    .arg(DNNL_ARG_DIFF_SRC, pd.diff_src_desc());
        });
        INDArray diffDst = dense(g);
        INDArray dx = arena.allocate(DataType.FLOAT, layout.physicalShape(xs));
        p.bind(DNNL_ARG_DIFF_DST, diffDst);
        p.bind(DNNL_ARG_DIFF_SRC, dx);
        run(p);
        releaseIfCopy(diffDst, g);
        return dx;
    }

    // ---------------------------------------------------------------- elementwise

    /**
     * The two elementwise functions the networks use, as oneDNN eltwise algorithms over flat runs of values: ReLU
     * (its backward reads the output) and SiLU (oneDNN's swish {@code z sigmoid(alpha z)} with alpha 1, vectorised
     * where libnd4j's sigmoid is not; its backward reads the input).
     */
    private enum Eltwise {
        RELU("relu", algorithm.eltwise_relu_use_dst_for_bwd, 0f, DNNL_ARG_DST),
        SILU("swish", algorithm.eltwise_swish, 1f, DNNL_ARG_SRC);

        final String name;
        final algorithm kind;
        final float alpha;
        /** The forward tensor the backward reads: the output for ReLU, the input for SiLU. */
        final int backwardReads;

        Eltwise(String name, algorithm kind, float alpha, int backwardReads) {
            this.name = name;
            this.kind = kind;
            this.alpha = alpha;
            this.backwardReads = backwardReads;
        }

        eltwise_forward.desc forward(memory.desc d) {
            return new eltwise_forward.desc(prop_kind.forward_training, kind, d, alpha, 0f);
        }
    }

    /** Runs {@code f} forward on {@code src} into {@code dst} (both dense, same length; may be the same array). */
    private void eltwiseForward(Eltwise f, INDArray src, INDArray dst) {
        long length = src.length();
        Dnnl.Prepared p = prepared(new Key(f.name + " fwd", length), () -> {
            memory.desc d = Dnnl.flat(length);
            eltwise_forward.primitive_desc pd = new eltwise_forward.primitive_desc(f.forward(d), Dnnl.userScratchpad(),
                    Dnnl.ENGINE);
            return new Dnnl.Prepared(new eltwise_forward(pd), pd).arg(DNNL_ARG_SRC, d).arg(DNNL_ARG_DST, d);
        });
        p.bind(DNNL_ARG_SRC, src);
        p.bind(DNNL_ARG_DST, dst);
        run(p);
    }

    /**
     * Runs {@code f} backward: dx = f'(data) g, where data is the tensor {@link Eltwise#backwardReads} names (all
     * dense, same length; dx may be g).
     */
    private void eltwiseBackward(Eltwise f, INDArray data, INDArray g, INDArray dx) {
        long length = g.length();
        Dnnl.Prepared p = prepared(new Key(f.name + " bwd", length), () -> {
            memory.desc d = Dnnl.flat(length);
            eltwise_forward.primitive_desc hint = new eltwise_forward.primitive_desc(f.forward(d), Dnnl.ENGINE);
            eltwise_backward.primitive_desc pd = new eltwise_backward.primitive_desc(new eltwise_backward.desc(
                    f.kind, d, d, f.alpha, 0f), Dnnl.userScratchpad(), Dnnl.ENGINE, hint);
            return new Dnnl.Prepared(new eltwise_backward(pd), pd).arg(f.backwardReads, d).arg(DNNL_ARG_DIFF_DST, d)
                    .arg(DNNL_ARG_DIFF_SRC, d);
        });
        p.bind(f.backwardReads, data);
        p.bind(DNNL_ARG_DIFF_DST, g);
        p.bind(DNNL_ARG_DIFF_SRC, dx);
        run(p);
    }

    @Override
    public void reluInPlace(INDArray t) {
        if (!isDense(t)) {
            Kernels.super.reluInPlace(t);
            return;
        }
        eltwiseForward(Eltwise.RELU, t, t);
    }

    @Override
    public INDArray reluBackward(INDArray out, INDArray g) {
        if (!isDense(out) || !isDense(g)) {
            return Kernels.super.reluBackward(out, g);
        }
        INDArray dx = arena.allocate(DataType.FLOAT, g.shape());
        eltwiseBackward(Eltwise.RELU, out, g, dx);
        return dx;
    }

    @Override
    public void reluBackwardInPlace(INDArray out, INDArray g) {
        if (!isDense(out) || !isDense(g)) {
            Kernels.super.reluBackwardInPlace(out, g);
            return;
        }
        eltwiseBackward(Eltwise.RELU, out, g, g);
    }

    @Override
    public INDArray silu(INDArray z) {
        if (!isDense(z)) {
            return Kernels.super.silu(z);
        }
        INDArray a = arena.allocate(DataType.FLOAT, z.shape());
        eltwiseForward(Eltwise.SILU, z, a);
        return a;
    }

    @Override
    public void siluBackwardInPlace(INDArray z, INDArray g) {
        if (!isDense(z) || !isDense(g)) {
            Kernels.super.siluBackwardInPlace(z, g);
            return;
        }
        eltwiseBackward(Eltwise.SILU, z, g, g);
    }

    /**
     * The per-(sample, channel) gate as one binary multiply of x by an {@code [N, C, 1, 1]} gate. oneDNN 2.5's jit
     * binary kernels broadcast so only where the channel block is the ISA's vector width (8 on AVX2, 16 on AVX-512);
     * elsewhere it has only its reference implementation (measured on AVX2, 8x32x112x112 in 16-channel blocks:
     * 170-280 ms, also split per sample), and ND4J's broadcast multiply runs instead (27-37 ms there, as fast as the
     * jit binary on 8-channel blocks).
     */
    @Override
    public INDArray scaleChannels(INDArray x, INDArray s) {
        if (!isDense(x)) {
            return Kernels.super.scaleChannels(x, s);
        }
        long[] xs = Layout.logicalShape(x);
        Layout layout = Layout.of(x);
        Dnnl.Prepared p = prepared(new Key("scale channels", dims(xs), layout), () -> binary(algorithm.binary_mul,
                Dnnl.featureMap(xs, layout), Dnnl.featureMap(new long[] {xs[0], xs[1], 1, 1}, layout)));
        if (p.isReference()) {
            return Kernels.super.scaleChannels(x, s);
        }
        INDArray gate = dense(s);
        INDArray out = arena.allocate(DataType.FLOAT, x.shape());
        p.bind(DNNL_ARG_SRC_0, x);
        p.bind(DNNL_ARG_SRC_1, gate);
        p.bind(DNNL_ARG_DST, out);
        run(p);
        releaseIfCopy(gate, s);
        return out;
    }

    /** A binary primitive {@code dst = src0 op src1} with dst shaped as src0, src1 broadcast over its unit dims. */
    private static Dnnl.Prepared binary(algorithm op, memory.desc src0, memory.desc src1) {
        binary.primitive_desc pd = new binary.primitive_desc(new binary.desc(op, src0, src1, src0),
                Dnnl.userScratchpad(), Dnnl.ENGINE);
        return new Dnnl.Prepared(new binary(pd), pd).arg(DNNL_ARG_SRC_0, src0).arg(DNNL_ARG_SRC_1, src1)
                .arg(DNNL_ARG_DST, src0);
    }

    @Override
    public void addInPlace(INDArray target, INDArray source, double alpha) {
        if (!isDense(target) || !isDense(source)) {
            Kernels.super.addInPlace(target, source, alpha);
            return;
        }
        long length = target.length();
        Dnnl.Prepared p = prepared(new Key("add", length, alpha), () -> {
            memory.desc d = Dnnl.flat(length);
            primitive_attr attr = Dnnl.userScratchpad();
            if (alpha != 1.0) {
                attr.set_scales(DNNL_ARG_SRC_1, 0, new float[] {(float) alpha});
            }
            binary.primitive_desc pd = new binary.primitive_desc(new binary.desc(algorithm.binary_add, d, d, d), attr,
                    Dnnl.ENGINE);
            return new Dnnl.Prepared(new binary(pd), pd).arg(DNNL_ARG_SRC_0, d).arg(DNNL_ARG_SRC_1, d)
                    .arg(DNNL_ARG_DST, d);
        });
        p.bind(DNNL_ARG_SRC_0, target);
        p.bind(DNNL_ARG_SRC_1, source);
        p.bind(DNNL_ARG_DST, target);
        run(p);
    }

    @Override
    public void scaleRowsInPlace(INDArray w, INDArray scale) {
        if (!isDense(w)) {
            Kernels.super.scaleRowsInPlace(w, scale);
            return;
        }
        Dnnl.Prepared p = rowScaler(w.size(0), w.length() / w.size(0));
        scaleRows(p, w, scale, w);
    }

    private Dnnl.Prepared rowScaler(long rows, long cols) {
        return prepared(new Key("scale rows", rows, cols), () -> {
            memory.desc m = Dnnl.desc(new long[] {rows, cols}, memory.format_tag.ab);
            return binary(algorithm.binary_mul, m, Dnnl.desc(new long[] {rows, 1}, memory.format_tag.ab));
        });
    }

    private void scaleRows(Dnnl.Prepared p, INDArray w, INDArray scale, INDArray out) {
        INDArray s = dense(scale);
        p.bind(DNNL_ARG_SRC_0, w);
        p.bind(DNNL_ARG_SRC_1, s);
        p.bind(DNNL_ARG_DST, out);
        run(p);
        releaseIfCopy(s, scale);
    }

    /**
     * The row dot products as a product into a temporary and a sum along each row: two passes at the memory's
     * speed (a batched matrix product of 1xK by Kx1 took 3-4x longer, libnd4j's reduce3 along the row longer still).
     */
    @Override
    public INDArray rowDots(INDArray a, INDArray b) {
        long rows = a.size(0);
        long cols = a.length() / rows;
        // a one-column reduction has the same source and destination shape, which oneDNN's reduction refuses
        if (cols < 2 || !isDense(a) || !isDense(b)) {
            return Kernels.super.rowDots(a, b);
        }
        memory.desc m = Dnnl.desc(new long[] {rows, cols}, memory.format_tag.ab);
        Dnnl.Prepared product = prepared(new Key("row product", rows, cols),
                () -> binary(algorithm.binary_mul, m, m));
        Dnnl.Prepared sum = prepared(new Key("row sum", rows, cols), () -> {
            memory.desc v = Dnnl.desc(new long[] {rows, 1}, memory.format_tag.ab);
            reduction.primitive_desc pd = new reduction.primitive_desc(new reduction.desc(algorithm.reduction_sum, m,
                    v, 0f, 0f), Dnnl.userScratchpad(), Dnnl.ENGINE);
            return new Dnnl.Prepared(new reduction(pd), pd).arg(DNNL_ARG_SRC, m).arg(DNNL_ARG_DST, v);
        });
        INDArray out = arena.allocate(DataType.FLOAT, rows);
        INDArray products = arena.allocate(DataType.FLOAT, rows, cols);
        product.bind(DNNL_ARG_SRC_0, a);
        product.bind(DNNL_ARG_SRC_1, b);
        product.bind(DNNL_ARG_DST, products);
        run(product);
        sum.bind(DNNL_ARG_SRC, products);
        sum.bind(DNNL_ARG_DST, out);
        run(sum);
        arena.release(products);
        return out;
    }

    @Override
    public INDArray scaleRows(INDArray w, INDArray scale) {
        INDArray src = dense(w);
        INDArray out = arena.allocate(DataType.FLOAT, w.shape());
        scaleRows(rowScaler(w.size(0), w.length() / w.size(0)), src, scale, out);
        releaseIfCopy(src, w);
        return out;
    }

    /**
     * A cache key: the operation and what fixes its primitive (shapes as lists, layouts, configs, flags), compared by
     * value.
     */
    private record Key(String op, List<Object> parts) {
        Key(String op, Object... parts) {
            this(op, List.of(parts));
        }
    }

    private static List<Long> dims(long[] shape) {
        return Arrays.stream(shape).boxed().toList();
    }

    @Override
    public String toString() {
        return "OnednnKernels[FLOAT, " + layout + ", " + arena + "]";
    }
}
