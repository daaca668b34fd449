package org.convbn.onednn;

import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_ATTR_OUTPUT_SCALES;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_BIAS;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_BIAS;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_DST;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_SRC;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_WEIGHTS;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DST;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SRC;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_WEIGHTS;
import static org.bytedeco.dnnl.global.dnnl.DNNL_RUNTIME_F32_VAL;
import static org.convbn.onednn.OnednnContext.dims;
import static org.nd4j.linalg.indexing.NDArrayIndex.all;
import static org.nd4j.linalg.indexing.NDArrayIndex.point;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Function;
import java.util.function.Predicate;
import net.jcip.annotations.NotThreadSafe;
import org.bytedeco.dnnl.convolution_backward_data;
import org.bytedeco.dnnl.convolution_backward_weights;
import org.bytedeco.dnnl.convolution_forward;
import org.bytedeco.dnnl.global.dnnl.algorithm;
import org.bytedeco.dnnl.global.dnnl.prop_kind;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.primitive_attr;
import org.bytedeco.dnnl.reorder;
import org.convbn.core.ConvConfig;
import org.convbn.nd4j.kernel.Kernels.ConvGradients;
import org.convbn.nd4j.kernel.Layout;
import org.convbn.nd4j.kernel.Nd4jKernels;
import org.convbn.onednn.OnednnContext.Key;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.same.Sum;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The convolutions of {@link OnednnKernels}: a conv's geometry, its forward, backward-data and backward-weights
 * primitives on the first layouts oneDNN has an optimised implementation for, and the reorders of the user's OIHW
 * weights into each primitive's layout (TUNE's per-channel scale applied by that reorder). A conv oneDNN has no
 * optimised implementation for runs on ND4J's kernels.
 */
@NotThreadSafe
final class OnednnConvolutions {
    private static final Logger LOG = LoggerFactory.getLogger(OnednnConvolutions.class);
    private final OnednnContext ctx;
    private final Nd4jKernels fallback;
    /** Convs for which oneDNN has no optimised implementation in any layout tried. */
    private final Set<Key> unsupported = new HashSet<>();

    OnednnConvolutions(OnednnContext ctx, Nd4jKernels fallback) {
        this.ctx = ctx;
        this.fallback = fallback;
    }

    /** The geometry of a conv on an input of logical shape {@code xs}. */
    private record Geometry(
            long[] src,
            long[] weights,
            long[] dst,
            long[] strides,
            long[] dilates,
            long[] padL,
            long[] padR,
            Layout srcLayout,
            Layout dstLayout) {
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
                    : new long[] {c.groups(), c.outChannelsPerGroup(), c.inChannelsPerGroup(), c.kernelH(), c.kernelW()
                    };
            return new Geometry(
                    xs,
                    weights,
                    ys,
                    new long[] {c.strideH(), c.strideW()},
                    new long[] {c.dilationH() - 1, c.dilationW() - 1},
                    new long[] {pt, pl},
                    new long[] {pb, pr},
                    srcLayout,
                    dstLayout);
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
        Layout in = ctx.preferredLayout(c.inChannels());
        Layout out = ctx.preferredLayout(c.outChannels());
        choices.add(new Layout[] {in, out});
        if (in.isBlocked() && out.isBlocked() && in != out) {
            // the smaller block divides both channel counts (each block size divides the next)
            Layout common = in.block() < out.block() ? in : out;
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
    private Dnnl.Prepared convPrimitive(
            String kind, ConvConfig c, long[] xs, boolean bias, Function<Geometry, Dnnl.Prepared> make) {
        Key key = new Key(kind, dims(xs), c, bias);
        if (unsupported.contains(key)) {
            return null;
        }
        Dnnl.Prepared p = ctx.cached(key);
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
                ctx.keep(key, p);
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
                ? new convolution_forward.desc(
                        prop_kind.forward_training,
                        algorithm.convolution_direct,
                        g.srcDesc(),
                        g.anyWeights(),
                        Dnnl.vector(g.dst[1]),
                        g.dstDesc(),
                        g.strides,
                        g.dilates,
                        g.padL,
                        g.padR)
                : new convolution_forward.desc(
                        prop_kind.forward_training,
                        algorithm.convolution_direct,
                        g.srcDesc(),
                        g.anyWeights(),
                        g.dstDesc(),
                        g.strides,
                        g.dilates,
                        g.padL,
                        g.padR);
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
        Dnnl.Prepared p =
                new Dnnl.Prepared(new reorder(pd), pd).arg(DNNL_ARG_SRC, s).arg(DNNL_ARG_DST, d);
        if (scaled) {
            p.arg(DNNL_ARG_ATTR_OUTPUT_SCALES, Dnnl.vector(g.dst[1]));
        }
        return p;
    }

    /** oneDNN's marker for a scale given at execution. */
    private static final float RUNTIME_SCALE = (float) DNNL_RUNTIME_F32_VAL();

    private Dnnl.Prepared convForward(ConvConfig c, long[] xs, boolean bias) {
        return convPrimitive("conv fwd", c, xs, bias, g -> {
            convolution_forward.primitive_desc pd = forwardDesc(g, bias, Dnnl.userScratchpad());
            Dnnl.Prepared p = new Dnnl.Prepared(new convolution_forward(pd), pd)
                    .arg(DNNL_ARG_SRC, pd.src_desc())
                    .arg(DNNL_ARG_WEIGHTS, pd.weights_desc())
                    .arg(DNNL_ARG_DST, pd.dst_desc());
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
            convolution_backward_data.desc d = new convolution_backward_data.desc(
                    algorithm.convolution_direct,
                    g.srcDesc(),
                    g.anyWeights(),
                    g.dstDesc(),
                    g.strides,
                    g.dilates,
                    g.padL,
                    g.padR);
            convolution_backward_data.primitive_desc pd =
                    new convolution_backward_data.primitive_desc(d, Dnnl.userScratchpad(), Dnnl.ENGINE, hint);
            Dnnl.Prepared p = new Dnnl.Prepared(new convolution_backward_data(pd), pd)
                    .arg(DNNL_ARG_DIFF_DST, pd.diff_dst_desc())
                    .arg(DNNL_ARG_WEIGHTS, pd.weights_desc())
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
                    ? new convolution_backward_weights.desc(
                            algorithm.convolution_direct,
                            g.srcDesc(),
                            g.anyWeights(),
                            Dnnl.vector(g.dst[1]),
                            g.dstDesc(),
                            g.strides,
                            g.dilates,
                            g.padL,
                            g.padR)
                    : new convolution_backward_weights.desc(
                            algorithm.convolution_direct,
                            g.srcDesc(),
                            g.anyWeights(),
                            g.dstDesc(),
                            g.strides,
                            g.dilates,
                            g.padL,
                            g.padR);
            convolution_backward_weights.primitive_desc pd =
                    new convolution_backward_weights.primitive_desc(d, Dnnl.userScratchpad(), Dnnl.ENGINE, hint);
            Dnnl.Prepared p = new Dnnl.Prepared(new convolution_backward_weights(pd), pd)
                    .arg(DNNL_ARG_SRC, pd.src_desc())
                    .arg(DNNL_ARG_DIFF_DST, pd.diff_dst_desc())
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
        INDArray src = ctx.dense(w);
        INDArray out = ctx.buffer(r.bytes(DNNL_ARG_DST));
        r.bind(DNNL_ARG_SRC, src);
        r.bind(DNNL_ARG_DST, out);
        INDArray scales = null;
        if (scale != null) {
            scales = ctx.dense(scale);
            r.bind(DNNL_ARG_ATTR_OUTPUT_SCALES, scales);
        }
        ctx.run(r);
        ctx.releaseIfCopy(src, w);
        ctx.releaseIfCopy(scales, scale);
        return out;
    }

    // Outputs are taken from the arena before the temporaries (reordered weights, the scratchpad), so that an output
    // lies next to the arrays made before it and a temporary's block, freed at once, is the next output's.

    INDArray conv(ConvConfig c, INDArray x, INDArray w, INDArray weightScale, INDArray b, Layout out) {
        long[] xs = Layout.logicalShape(x);
        Dnnl.Prepared p = convForward(c, xs, b != null);
        ConvConfig merged = isDirect(p) ? null : mergedGroups(c, m -> isDirect(convForward(m, xs, b != null)));
        if (merged != null) {
            INDArray wide = blockDiagonal(c, merged, w);
            INDArray y = conv(merged, x, wide, weightScale, b, out);
            ctx.arena().release(wide);
            return y;
        }
        if (p == null) {
            return fallback.conv(c, x, w, weightScale, b, out);
        }
        INDArray y = ctx.arena().allocate(DataType.FLOAT, p.dstLayout.physicalShape(c.outputShape(xs)));
        INDArray src = ctx.as(x, p.srcLayout);
        INDArray weights = reorderWeights(p, w, weightScale);
        INDArray bias = b == null ? null : ctx.dense(b);
        p.bind(DNNL_ARG_SRC, src);
        p.bind(DNNL_ARG_WEIGHTS, weights);
        if (bias != null) {
            p.bind(DNNL_ARG_BIAS, bias);
        }
        p.bind(DNNL_ARG_DST, y);
        ctx.run(p);
        ctx.releaseIfCopy(bias, b);
        ctx.arena().release(weights);
        ctx.releaseIfCopy(src, x);
        return ctx.moveTo(y, out);
    }

    ConvGradients convBackward(
            ConvConfig c,
            INDArray x,
            INDArray w,
            INDArray weightScale,
            INDArray g,
            boolean inputGradient,
            boolean biasGradient,
            Layout inputLayout) {
        long[] xs = Layout.logicalShape(x);
        Dnnl.Prepared data = inputGradient ? convBackwardData(c, xs) : null;
        Dnnl.Prepared weights = convBackwardWeights(c, xs, biasGradient);
        boolean direct = isDirect(weights) && (!inputGradient || isDirect(data));
        ConvConfig merged = direct
                ? null
                : mergedGroups(
                        c,
                        m -> isDirect(convBackwardWeights(m, xs, biasGradient))
                                && (!inputGradient || isDirect(convBackwardData(m, xs))));
        if (merged != null) {
            INDArray wide = blockDiagonal(c, merged, w);
            ConvGradients wideGradients =
                    convBackward(merged, x, wide, weightScale, g, inputGradient, biasGradient, inputLayout);
            ctx.arena().release(wide);
            INDArray dw = diagonalBlocks(c, merged, wideGradients.weight());
            ctx.arena().release(wideGradients.weight());
            return new ConvGradients(wideGradients.input(), dw, wideGradients.bias());
        }
        if (weights == null || inputGradient && data == null) {
            return fallback.convBackward(c, x, w, weightScale, g, inputGradient, biasGradient, inputLayout);
        }
        INDArray dw = ctx.arena().allocate(DataType.FLOAT, w.shape());
        INDArray db = biasGradient ? ctx.arena().allocate(DataType.FLOAT, c.outChannels()) : null;
        INDArray dx = null;
        if (inputGradient) {
            dx = ctx.arena().allocate(DataType.FLOAT, data.srcLayout.physicalShape(xs));
            INDArray diffDst = ctx.as(g, data.dstLayout);
            INDArray wr = reorderWeights(data, w, weightScale);
            data.bind(DNNL_ARG_DIFF_DST, diffDst);
            data.bind(DNNL_ARG_WEIGHTS, wr);
            data.bind(DNNL_ARG_DIFF_SRC, dx);
            ctx.run(data);
            ctx.arena().release(wr);
            ctx.releaseIfCopy(diffDst, g);
            dx = ctx.moveTo(dx, inputLayout);
        }
        Dnnl.Prepared correlation = isDirect(weights) ? null : depthwiseCorrelation(c, xs);
        if (correlation != null) {
            depthwiseWeightGradient(correlation, c, x, g, dw, db);
            return new ConvGradients(dx, dw, db);
        }
        INDArray dwPrimitive = ctx.buffer(weights.bytes(DNNL_ARG_DIFF_WEIGHTS));
        INDArray diffDst = ctx.as(g, weights.dstLayout);
        INDArray src = ctx.as(x, weights.srcLayout);
        weights.bind(DNNL_ARG_SRC, src);
        weights.bind(DNNL_ARG_DIFF_DST, diffDst);
        weights.bind(DNNL_ARG_DIFF_WEIGHTS, dwPrimitive);
        if (db != null) {
            weights.bind(DNNL_ARG_DIFF_BIAS, db);
        }
        ctx.run(weights);
        ctx.releaseIfCopy(src, x);
        ctx.releaseIfCopy(diffDst, g);
        weights.weightsReorder.bind(DNNL_ARG_SRC, dwPrimitive);
        weights.weightsReorder.bind(DNNL_ARG_DST, dw);
        ctx.run(weights.weightsReorder);
        ctx.arena().release(dwPrimitive);
        return new ConvGradients(dx, dw, db);
    }

    // ---------------------------------------------------------------- groups narrower than a channel block

    /**
     * A grouped conv whose groups are narrower than the feature maps' channel block (ResNeXt-50's 32 groups of 4
     * channels in 8-channel blocks, groups of 8 in 16-channel blocks) has no direct oneDNN kernel: oneDNN's blocked
     * kernels take whole blocks per group, and it runs its GEMM path on NCHW copies instead. It runs as the conv with
     * m = block / (C / groups) neighbouring groups merged into one, whose weight is block-diagonal (each original
     * group's weight on the diagonal, zeros between): m times the multiply-adds of a small conv, on a direct kernel.
     *
     * @param direct whether oneDNN has direct kernels for the passes about to run of a conv
     * @return the merged conv, or null where this does not apply (ungrouped or depthwise, groups that do not tile a
     *         block, feature maps not blocked) or oneDNN has no direct kernel for the merged conv either
     */
    private ConvConfig mergedGroups(ConvConfig c, Predicate<ConvConfig> direct) {
        Layout in = ctx.preferredLayout(c.inChannels());
        int perGroup = c.inChannelsPerGroup();
        if (c.groups() == 1
                || perGroup == 1
                || !in.isBlocked()
                || in != ctx.preferredLayout(c.outChannels())
                || perGroup >= in.block()
                || in.block() % perGroup != 0) {
            return null;
        }
        int m = in.block() / perGroup;
        if (c.groups() % m != 0 || (long) m * c.outChannelsPerGroup() % in.block() != 0) {
            return null;
        }
        ConvConfig merged = new ConvConfig(
                c.inChannels(),
                c.outChannels(),
                c.kernelH(),
                c.kernelW(),
                c.strideH(),
                c.strideW(),
                c.padding(),
                c.dilationH(),
                c.dilationW(),
                c.groups() / m,
                c.bias());
        return direct.test(merged) ? merged : null;
    }

    /** @return whether a primitive exists and runs one of oneDNN's direct kernels */
    private static boolean isDirect(Dnnl.Prepared p) {
        return p != null && p.isDirect();
    }

    /**
     * @param w the grouped conv's weight {@code [O, C/groups, KH, KW]}, not modified
     * @return the merged conv's weight {@code [O, C/merged groups, KH, KW]}: w's groups on the diagonal of each merged
     *         group, zeros elsewhere (a new arena array)
     */
    private INDArray blockDiagonal(ConvConfig c, ConvConfig merged, INDArray w) {
        INDArray wide = ctx.arena().allocate(DataType.FLOAT, merged.weightShape());
        wide.assign(0);
        INDArray src = ctx.dense(w);
        int m = c.groups() / merged.groups();
        INDArray narrow = byMergedGroup(c, merged, src, false);
        INDArray blocks = byMergedGroup(c, merged, wide, true);
        for (int j = 0; j < m; j++) {
            blocks.get(all(), point(j), all(), point(j), all()).assign(narrow.get(all(), point(j), all(), all()));
        }
        ctx.releaseIfCopy(src, w);
        return wide;
    }

    /**
     * @param wide the merged conv's weight gradient, not modified
     * @return the grouped conv's weight gradient: the diagonal blocks of {@code wide} (a new arena array)
     */
    private INDArray diagonalBlocks(ConvConfig c, ConvConfig merged, INDArray wide) {
        INDArray narrow = ctx.arena().allocate(DataType.FLOAT, c.weightShape());
        int m = c.groups() / merged.groups();
        INDArray to = byMergedGroup(c, merged, narrow, false);
        INDArray blocks = byMergedGroup(c, merged, wide, true);
        for (int j = 0; j < m; j++) {
            to.get(all(), point(j), all(), all()).assign(blocks.get(all(), point(j), all(), point(j), all()));
        }
        return narrow;
    }

    /**
     * A dense weight viewed by merged group: output channel o = (G m + j) O/groups + r of merged group G, original
     * group j within it, row r; the grouped conv's weight as {@code [groups/m, m, O/groups, C/groups KH KW]}, the
     * merged one's ({@code wide}) as {@code [groups/m, m, O/groups, m, C/groups KH KW]} (its input channels: original
     * group j' of the merged group, then the channel within it).
     */
    private static INDArray byMergedGroup(ConvConfig c, ConvConfig merged, INDArray w, boolean wide) {
        long g = merged.groups();
        long m = c.groups() / merged.groups();
        long rows = c.outChannelsPerGroup();
        long cols = (long) c.inChannelsPerGroup() * c.kernelH() * c.kernelW();
        return wide ? w.reshape('c', g, m, rows, m, cols) : w.reshape('c', g, m, rows, cols);
    }

    // ---------------------------------------------------------------- depthwise weight gradient as a correlation

    /**
     * The weight gradient of a depthwise conv as one forward depthwise conv, for the kernels oneDNN's direct
     * depthwise backward-weights kernel refuses (it takes kernels up to 3 wide: the 5x5 ones of EfficientNet and
     * MobileNetV3 went to its GEMM kernel, which unfolds every channel's input 25 times). For channel c, with x
     * zero-padded as the conv pads it,
     *
     * <pre>
     *   dW[c, i, j] = sum_n sum_{oh, ow} g[n, c, oh, ow] * x[n, c, i + oh * sH, j + ow * sW]
     * </pre>
     *
     * which for each (n, c) is a correlation of x with g as the kernel, its taps sH and sW apart (a dilated kernel):
     * a depthwise conv over the N*C channels of the batch, x viewed as {@code [1, N*C, H, W]}, g as the weights
     * {@code [N*C, 1, 1, OH, OW]}, stride 1, dilation (sH - 1, sW - 1), the conv's padding; its
     * {@code [1, N*C, KH', KW']} output (KH' >= KH when the conv leaves trailing rows unread) summed over n and cut
     * to {@code [C, 1, KH, KW]}. In a blocked layout both views are the arrays as they are: nChw8c of
     * {@code [N, C, H, W]} is nChw8c of {@code [1, N*C, H, W]}, and nChw8c of g is Goihw8g of the weights (C a
     * multiple of the block).
     *
     * @return the forward primitive (its dst layout the blocked layout of x and g), or null where this does not
     *         apply (not depthwise, dilated, no blocked layout for C) or oneDNN has no direct kernel for it
     */
    private Dnnl.Prepared depthwiseCorrelation(ConvConfig c, long[] xs) {
        Layout layout = ctx.preferredLayout(c.inChannels());
        boolean applies = c.groups() == c.inChannels()
                && c.outChannels() == c.inChannels()
                && c.dilationH() == 1
                && c.dilationW() == 1
                && layout.isBlocked()
                && c.inChannels() % layout.block() == 0;
        Key key = new Key("depthwise weight gradient", dims(xs), c);
        if (!applies || unsupported.contains(key)) {
            return null;
        }
        Dnnl.Prepared cached = ctx.cached(key);
        if (cached != null) {
            return cached;
        }
        Geometry conv = Geometry.of(c, xs, layout, layout);
        long channels = xs[0] * xs[1];
        long[] size = correlationSize(conv);
        memory.desc src = Dnnl.featureMap(new long[] {1, channels, xs[2], xs[3]}, layout);
        memory.desc weights = Dnnl.desc(
                new long[] {channels, 1, 1, conv.dst[2], conv.dst[3]},
                layout == Layout.BLOCKED8 ? memory.format_tag.Goihw8g : memory.format_tag.Goihw16g);
        memory.desc out = Dnnl.featureMap(new long[] {1, channels, size[0], size[1]}, layout);
        Dnnl.Prepared p;
        try {
            convolution_forward.desc d = new convolution_forward.desc(
                    prop_kind.forward_inference,
                    algorithm.convolution_direct,
                    src,
                    weights,
                    out,
                    new long[] {1, 1},
                    new long[] {c.strideH() - 1, c.strideW() - 1},
                    conv.padL,
                    conv.padR);
            convolution_forward.primitive_desc pd =
                    new convolution_forward.primitive_desc(d, Dnnl.userScratchpad(), Dnnl.ENGINE);
            p = new Dnnl.Prepared(new convolution_forward(pd), pd)
                    .arg(DNNL_ARG_SRC, src)
                    .arg(DNNL_ARG_WEIGHTS, weights)
                    .arg(DNNL_ARG_DST, out);
        } catch (RuntimeException e) {
            unsupported.add(key);
            return null;
        }
        if (!p.isDirect()) {
            p.close();
            unsupported.add(key);
            return null;
        }
        p.srcLayout = layout;
        p.dstLayout = layout;
        ctx.keep(key, p);
        return p;
    }

    /**
     * @param conv the depthwise conv's geometry: its padding is the correlation's (the end padding clamped at 0)
     * @return the correlation's output height and width: KH and KW, or more where the conv leaves trailing input rows
     *         or columns unread (the correlation has no negative padding)
     */
    private static long[] correlationSize(Geometry conv) {
        return new long[] {
            conv.src[2] + conv.padL[0] + conv.padR[0] - (conv.dst[2] - 1) * conv.strides[0],
            conv.src[3] + conv.padL[1] + conv.padR[1] - (conv.dst[3] - 1) * conv.strides[1]
        };
    }

    /**
     * Runs {@link #depthwiseCorrelation}'s primitive for x and g and writes the weight gradient into dw
     * {@code [C, 1, KH, KW]} and, when db is given, the bias gradient (g's channel sums) into db; x and g not
     * modified.
     */
    private void depthwiseWeightGradient(
            Dnnl.Prepared p, ConvConfig c, INDArray x, INDArray g, INDArray dw, INDArray db) {
        Layout layout = p.srcLayout;
        long[] xs = Layout.logicalShape(x);
        long n = xs[0];
        long blocks = c.inChannels() / layout.block();
        long[] size = correlationSize(Geometry.of(c, xs, layout, layout));
        INDArray src = ctx.as(x, layout);
        INDArray kernel = ctx.as(g, layout);
        INDArray perSample = ctx.arena().allocate(DataType.FLOAT, n, blocks, size[0], size[1], layout.block());
        p.bind(DNNL_ARG_SRC, src);
        p.bind(DNNL_ARG_WEIGHTS, kernel);
        p.bind(DNNL_ARG_DST, perSample);
        ctx.run(p);
        INDArray summed = ctx.arena().allocate(DataType.FLOAT, blocks, size[0], size[1], layout.block());
        Nd4j.exec(new Sum(perSample, summed, 0));
        // [C/b, KH', KW', b] -> [C/b, b, KH, KW], which is dw [C, 1, KH, KW] in 'c' order
        dw.reshape('c', blocks, layout.block(), c.kernelH(), c.kernelW())
                .assign(summed.permute(0, 3, 1, 2)
                        .get(
                                all(),
                                all(),
                                NDArrayIndex.interval(0, c.kernelH()),
                                NDArrayIndex.interval(0, c.kernelW())));
        if (db != null) {
            INDArray sums = fallback.channelSums(kernel);
            db.assign(sums);
            ctx.arena().release(sums);
        }
        ctx.arena().release(summed, perSample);
        ctx.releaseIfCopy(kernel, g);
        ctx.releaseIfCopy(src, x);
    }
}
