package org.convbn.nd4j;

import net.jcip.annotations.ThreadSafe;
import org.convbn.core.ConvConfig;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels.ConvGradients;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The convolution and its backward on libnd4j's {@code conv2d} / {@code conv2d_bp} ops, NCHW input and OIHW
 * weights, with groups built on top (libnd4j's conv2d has none): each group's slice of input channels and output
 * channels is convolved separately and the results are concatenated along the channel axis. Depthwise convs (one
 * input channel per group) on small maps run as libnd4j's {@code depthwise_conv2d} / {@code depthwise_conv2d_bp}
 * instead (see {@link #DEPTHWISE_OP_MAX_OUTPUTS}).
 *
 * <p>Every method takes its results from the given {@link Arena} (the caller owns them) and modifies none of its
 * arguments. Shapes are those of {@link ConvConfig}; arguments are assumed validated by the caller.
 */
@ThreadSafe
public final class Conv2dOps {
    /** libnd4j integer argument: 0 = NCHW. */
    private static final int NCHW = 0;
    /** libnd4j integer argument: 1 = OIYX, i.e. [O, I, kH, kW]. */
    private static final int OIYX = 1;
    /** libnd4j integer argument of the depthwise ops: 1 = [mC, C, kH, kW] (channel multiplier first). */
    private static final int MC_IC_YX = 1;
    /**
     * Largest N oH oW (outputs per channel) for which a depthwise conv runs as libnd4j's depthwise op rather than the
     * per-group loop. Measured (3x3, forward + backward, float32 and float64, 2 cores): the loop costs a fixed
     * ~0.7 ms per group, the op ~0.2 us per output element and more; the op wins below ~1,500 outputs per group
     * (2 x 8 x 8 x 144 channels: 8 ms against 104 ms; 2 x 2 x 2 x 672: 3 ms against 443 ms), they tie at 1,568
     * (8 x 14 x 14 x 480: 349 against 308 ms), and the loop wins above (8 x 56 x 56 x 64: 123 ms against 948 ms).
     */
    static final long DEPTHWISE_OP_MAX_OUTPUTS = 1024;

    private Conv2dOps() {}

    /**
     * {@code conv(x, w) + b}.
     *
     * @param c the conv configuration
     * @param x input {@code [N, C, H, W]}, not modified
     * @param w weight {@code [O, C/groups, kH, kW]}, not modified
     * @param b bias {@code [O]} or null, not modified
     * @return a new {@code [N, O, oH, oW]} array
     */
    public static INDArray forward(ConvConfig c, INDArray x, INDArray w, INDArray b) {
        return forward(Arena.direct(), c, x, w, b);
    }

    /** {@link #forward(ConvConfig, INDArray, INDArray, INDArray)} with the result from {@code arena}. */
    public static INDArray forward(Arena arena, ConvConfig c, INDArray x, INDArray w, INDArray b) {
        INDArray y = arena.allocate(x.dataType(), c.outputShape(x.shape()));
        if (c.groups() == 1) {
            forwardGroup(c, x, w, b, y);
            return y;
        }
        if (useDepthwiseOp(c, y)) {
            INDArray dw = depthwiseWeight(arena, c, w);
            DynamicCustomOp.DynamicCustomOpsBuilder op = DynamicCustomOp.builder("depthwise_conv2d");
            op.addInputs(b == null ? new INDArray[] {x, dw} : new INDArray[] {x, dw, b});
            op.addOutputs(y);
            op.addIntegerArguments(intArgs(c, MC_IC_YX));
            exec(c, op.build());
            releaseDepthwiseWeight(arena, c, dw);
            return y;
        }
        for (int g = 0; g < c.groups(); g++) {
            INDArray xg = inputSlice(arena, c, x, g);
            INDArray wg = outputSlice(arena, c, w, g);
            INDArray bg = b == null ? null : outputSlice(arena, c, b, g);
            INDArray yg = arena.allocate(y.dataType(), y.size(0), c.outChannelsPerGroup(), y.size(2), y.size(3));
            forwardGroup(c, xg, wg, bg, yg);
            channels(y, g, c.outChannelsPerGroup()).assign(yg);
            arena.release(xg, wg, bg, yg);
        }
        return y;
    }

    /**
     * Backward of {@code conv(x, w) + b} given {@code gy = dL/dY}.
     *
     * @param c the conv configuration
     * @param x the forward's input, not modified
     * @param w the forward's weight, not modified
     * @param b the forward's bias or null (then no bias gradient is computed), not modified; only its shape is
     *          used
     * @param gy dL/dY {@code [N, O, oH, oW]}, not modified
     * @return new arrays dX, dW and (when {@code b != null}) db
     */
    public static ConvGradients backward(ConvConfig c, INDArray x, INDArray w, INDArray b, INDArray gy) {
        return backward(Arena.direct(), c, x, w, b, gy);
    }

    /** {@link #backward(ConvConfig, INDArray, INDArray, INDArray, INDArray)} with the results from {@code arena}. */
    public static ConvGradients backward(Arena arena, ConvConfig c, INDArray x, INDArray w, INDArray b, INDArray gy) {
        ConvGradients all = new ConvGradients(
                arena.allocate(x.dataType(), x.shape()),
                arena.allocate(w.dataType(), w.shape()),
                b == null ? null : arena.allocate(b.dataType(), b.shape()));
        if (c.groups() == 1) {
            backwardGroup(c, x, w, b, gy, all);
            return all;
        }
        if (useDepthwiseOp(c, gy)) {
            depthwiseBackward(arena, c, x, w, b, gy, all);
            return all;
        }
        int og = c.outChannelsPerGroup();
        for (int g = 0; g < c.groups(); g++) {
            INDArray xg = inputSlice(arena, c, x, g);
            INDArray wg = outputSlice(arena, c, w, g);
            INDArray bg = b == null ? null : outputSlice(arena, c, b, g);
            INDArray gyg = arena.allocate(gy.dataType(), gy.size(0), og, gy.size(2), gy.size(3));
            gyg.assign(channels(gy, g, og));
            ConvGradients part = new ConvGradients(
                    arena.allocate(xg.dataType(), xg.shape()),
                    arena.allocate(wg.dataType(), wg.shape()),
                    bg == null ? null : arena.allocate(bg.dataType(), og));
            backwardGroup(c, xg, wg, bg, gyg, part);
            channels(all.input(), g, c.inChannelsPerGroup()).assign(part.input());
            outputs(all.weight(), g, og).assign(part.weight());
            if (bg != null) {
                outputs(all.bias(), g, og).assign(part.bias());
            }
            arena.release(xg, wg, bg, gyg, part.input(), part.weight(), part.bias());
        }
        return all;
    }

    /**
     * Whether the conv runs as libnd4j's depthwise op: depthwise (one input channel per group, any channel multiplier
     * {@code O / C}) and at most {@link #DEPTHWISE_OP_MAX_OUTPUTS} outputs per channel.
     *
     * @param y the output (or its gradient), {@code [N, O, oH, oW]}
     */
    static boolean useDepthwiseOp(ConvConfig c, INDArray y) {
        return c.groups() > 1
                && c.inChannelsPerGroup() == 1
                && y.size(0) * y.size(2) * y.size(3) <= DEPTHWISE_OP_MAX_OUTPUTS;
    }

    /**
     * The weight in libnd4j's depthwise layout {@code [mC, C, kH, kW]} (wFormat 1). Output channel {@code o = c mC
     * + m} in both layouts, so {@code [O, 1, kH, kW]} is {@code [C, mC, kH, kW]} and only mC and C swap: a view
     * when {@code mC == 1}, else a copy from the arena.
     */
    private static INDArray depthwiseWeight(Arena arena, ConvConfig c, INDArray w) {
        int mult = c.outChannelsPerGroup();
        if (mult == 1) {
            return w.reshape(1, c.inChannels(), c.kernelH(), c.kernelW());
        }
        INDArray swapped =
                w.reshape(c.inChannels(), mult, c.kernelH(), c.kernelW()).permute(1, 0, 2, 3);
        return arena.allocate(w.dataType(), swapped.shape()).assign(swapped);
    }

    /** Gives back a {@link #depthwiseWeight} copy (the view made when {@code mC == 1} is no one's to release). */
    private static void releaseDepthwiseWeight(Arena arena, ConvConfig c, INDArray dw) {
        if (c.outChannelsPerGroup() != 1) {
            arena.release(dw);
        }
    }

    private static void depthwiseBackward(
            Arena arena, ConvConfig c, INDArray x, INDArray w, INDArray b, INDArray gy, ConvGradients out) {
        int mult = c.outChannelsPerGroup();
        INDArray dw = depthwiseWeight(arena, c, w);
        INDArray gw = mult == 1 ? out.weight().reshape(dw.shape()) : arena.allocate(w.dataType(), dw.shape());
        DynamicCustomOp.DynamicCustomOpsBuilder op = DynamicCustomOp.builder("depthwise_conv2d_bp");
        op.addInputs(b == null ? new INDArray[] {x, dw, gy} : new INDArray[] {x, dw, b, gy});
        op.addOutputs(b == null ? new INDArray[] {out.input(), gw} : new INDArray[] {out.input(), gw, out.bias()});
        op.addIntegerArguments(intArgs(c, MC_IC_YX));
        exec(c, op.build());
        if (mult != 1) {
            out.weight().reshape(c.inChannels(), mult, c.kernelH(), c.kernelW()).assign(gw.permute(1, 0, 2, 3));
            arena.release(gw);
        }
        releaseDepthwiseWeight(arena, c, dw);
    }

    private static void forwardGroup(ConvConfig c, INDArray x, INDArray w, INDArray b, INDArray out) {
        DynamicCustomOp.DynamicCustomOpsBuilder op = DynamicCustomOp.builder("conv2d");
        op.addInputs(b == null ? new INDArray[] {x, w} : new INDArray[] {x, w, b});
        op.addOutputs(out);
        op.addIntegerArguments(intArgs(c));
        exec(c, op.build());
    }

    private static void backwardGroup(
            ConvConfig c, INDArray x, INDArray w, INDArray b, INDArray gy, ConvGradients out) {
        DynamicCustomOp.DynamicCustomOpsBuilder op = DynamicCustomOp.builder("conv2d_bp");
        op.addInputs(b == null ? new INDArray[] {x, w, gy} : new INDArray[] {x, w, b, gy});
        op.addOutputs(
                b == null
                        ? new INDArray[] {out.input(), out.weight()}
                        : new INDArray[] {out.input(), out.weight(), out.bias()});
        op.addIntegerArguments(intArgs(c));
        exec(c, op.build());
    }

    /**
     * Runs a conv op. oneDNN (the helper of the nd4j-native onednn builds) rejects dilated float32 convolutions
     * ("could not create a descriptor for a dilated convolution"), so those run with helpers off, libnd4j's own
     * im2col path ({@link PlatformHelpers}: a process-wide switch, counted across threads).
     */
    private static void exec(ConvConfig c, DynamicCustomOp op) {
        exec(c.dilationH() > 1 || c.dilationW() > 1, op);
    }

    /** Runs a conv-like op, with libnd4j's platform helpers off when it is dilated (see above). */
    static void exec(boolean dilated, DynamicCustomOp op) {
        if (dilated) {
            PlatformHelpers.runWithout(() -> Nd4j.exec(op));
        } else {
            Nd4j.exec(op);
        }
    }

    /** {kH, kW, sH, sW, pH, pW, dH, dW, same, NCHW, OIYX}; "same" padding sizes are derived by libnd4j. */
    private static int[] intArgs(ConvConfig c) {
        return intArgs(c, OIYX);
    }

    private static int[] intArgs(ConvConfig c, int weightFormat) {
        return new int[] {
            c.kernelH(),
            c.kernelW(),
            c.strideH(),
            c.strideW(),
            c.padding().h(),
            c.padding().w(),
            c.dilationH(),
            c.dilationW(),
            c.padding().isSame() ? 1 : 0,
            NCHW,
            weightFormat
        };
    }

    /** Group g's input channels, copied to a contiguous array (libnd4j's im2col wants dense NCHW). */
    private static INDArray inputSlice(Arena arena, ConvConfig c, INDArray x, int g) {
        int per = c.inChannelsPerGroup();
        INDArray slice = arena.allocate(x.dataType(), x.size(0), per, x.size(2), x.size(3));
        return slice.assign(channels(x, g, per));
    }

    /** Group g's output channels of a weight or bias, copied. */
    private static INDArray outputSlice(Arena arena, ConvConfig c, INDArray t, int g) {
        INDArray view = outputs(t, g, c.outChannelsPerGroup());
        return arena.allocate(t.dataType(), view.shape()).assign(view);
    }

    /** A view of channels {@code [g per, (g + 1) per)} of an NCHW array. */
    static INDArray channels(INDArray t, int g, int per) {
        return Tensors.slice(t, 1, (long) g * per, (long) (g + 1) * per);
    }

    /** A view of rows {@code [g per, (g + 1) per)} of a weight or bias. */
    static INDArray outputs(INDArray t, int g, int per) {
        return Tensors.slice(t, 0, (long) g * per, (long) (g + 1) * per);
    }
}
