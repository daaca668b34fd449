package org.convbn.nd4j;

import org.convbn.core.ConvConfig;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.factory.Environment;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * The convolution and its backward on libnd4j's {@code conv2d} / {@code conv2d_bp} ops, NCHW input and OIHW
 * weights, with groups built on top (libnd4j's conv2d has none): each group's slice of input channels and
 * output channels is convolved separately and the results are concatenated along the channel axis.
 *
 * <p>Every method allocates its results and modifies none of its arguments. Shapes are those of
 * {@link ConvConfig}; arguments are assumed validated by the caller.
 */
public final class Conv2dOps {
    /** libnd4j integer argument: 0 = NCHW. */
    private static final int NCHW = 0;
    /** libnd4j integer argument: 1 = OIYX, i.e. [O, I, kH, kW]. */
    private static final int OIYX = 1;

    private Conv2dOps() {
    }

    /**
     * Gradients of a conv.
     *
     * @param input dL/dX {@code [N, C, H, W]}
     * @param weight dL/dW {@code [O, C/groups, kH, kW]}
     * @param bias dL/db {@code [O]}, or null when the conv was run without a bias
     */
    public record Gradients(INDArray input, INDArray weight, INDArray bias) {
    }

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
        if (c.groups() == 1) {
            return forwardGroup(c, x, w, b);
        }
        INDArray[] outs = new INDArray[c.groups()];
        for (int g = 0; g < c.groups(); g++) {
            INDArray xg = inputSlice(c, x, g);
            outs[g] = forwardGroup(c, xg, outputSlice(c, w, g), b == null ? null : outputSlice(c, b, g));
            NativeMemory.release(xg);
        }
        INDArray y = Nd4j.concat(1, outs);
        NativeMemory.release(outs);
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
    public static Gradients backward(ConvConfig c, INDArray x, INDArray w, INDArray b, INDArray gy) {
        if (c.groups() == 1) {
            return backwardGroup(c, x, w, b, gy);
        }
        INDArray[] gx = new INDArray[c.groups()];
        INDArray[] gw = new INDArray[c.groups()];
        INDArray[] gb = new INDArray[c.groups()];
        for (int g = 0; g < c.groups(); g++) {
            INDArray xg = inputSlice(c, x, g);
            INDArray gyg = channelSlice(gy, g, c.outChannelsPerGroup());
            Gradients part = backwardGroup(c, xg, outputSlice(c, w, g), b == null ? null : outputSlice(c, b, g), gyg);
            NativeMemory.release(xg, gyg);
            gx[g] = part.input();
            gw[g] = part.weight();
            gb[g] = part.bias();
        }
        Gradients all = new Gradients(Nd4j.concat(1, gx), Nd4j.concat(0, gw), b == null ? null : Nd4j.concat(0, gb));
        NativeMemory.release(gx);
        return all;
    }

    private static INDArray forwardGroup(ConvConfig c, INDArray x, INDArray w, INDArray b) {
        INDArray out = Nd4j.createUninitialized(x.dataType(), x.size(0), w.size(0), c.outputHeight((int) x.size(2)),
                c.outputWidth((int) x.size(3)));
        DynamicCustomOp.DynamicCustomOpsBuilder op = DynamicCustomOp.builder("conv2d");
        op.addInputs(b == null ? new INDArray[] {x, w} : new INDArray[] {x, w, b});
        op.addOutputs(out);
        op.addIntegerArguments(intArgs(c));
        exec(c, op.build());
        return out;
    }

    private static Gradients backwardGroup(ConvConfig c, INDArray x, INDArray w, INDArray b, INDArray gy) {
        INDArray gx = Nd4j.createUninitialized(x.dataType(), x.shape());
        INDArray gw = Nd4j.createUninitialized(w.dataType(), w.shape());
        INDArray gb = b == null ? null : Nd4j.createUninitialized(b.dataType(), b.shape());
        DynamicCustomOp.DynamicCustomOpsBuilder op = DynamicCustomOp.builder("conv2d_bp");
        op.addInputs(b == null ? new INDArray[] {x, w, gy} : new INDArray[] {x, w, b, gy});
        op.addOutputs(b == null ? new INDArray[] {gx, gw} : new INDArray[] {gx, gw, gb});
        op.addIntegerArguments(intArgs(c));
        exec(c, op.build());
        return new Gradients(gx, gw, gb);
    }

    /**
     * Runs a conv op. oneDNN (the helper of the nd4j-native onednn builds) rejects dilated float32 convolutions
     * ("could not create a descriptor for a dilated convolution"), so those run with helpers off, libnd4j's own
     * im2col path; the process-wide switch is restored at once. Blocks are not thread-safe anyway.
     */
    private static void exec(ConvConfig c, DynamicCustomOp op) {
        boolean dilated = c.dilationH() > 1 || c.dilationW() > 1;
        Environment env = Nd4j.getEnvironment();
        boolean helpers = env.helpersAllowed();
        if (!dilated || !helpers) {
            Nd4j.exec(op);
            return;
        }
        env.allowHelpers(false);
        try {
            Nd4j.exec(op);
        } finally {
            env.allowHelpers(true);
        }
    }

    /** {kH, kW, sH, sW, pH, pW, dH, dW, same, NCHW, OIYX}; "same" padding sizes are derived by libnd4j. */
    private static int[] intArgs(ConvConfig c) {
        return new int[] {c.kernelH(), c.kernelW(), c.strideH(), c.strideW(), c.padding().h(), c.padding().w(),
            c.dilationH(), c.dilationW(), c.padding().isSame() ? 1 : 0, NCHW, OIYX};
    }

    /** Group g's input channels, copied to a contiguous array (libnd4j's im2col wants dense NCHW). */
    private static INDArray inputSlice(ConvConfig c, INDArray x, int g) {
        return channelSlice(x, g, c.inChannelsPerGroup());
    }

    private static INDArray channelSlice(INDArray t, int g, int perGroup) {
        return t.get(NDArrayIndex.all(), NDArrayIndex.interval((long) g * perGroup, (long) (g + 1) * perGroup),
                NDArrayIndex.all(), NDArrayIndex.all()).dup();
    }

    /** Group g's output channels of a weight or bias, copied. */
    private static INDArray outputSlice(ConvConfig c, INDArray t, int g) {
        long from = (long) g * c.outChannelsPerGroup();
        long to = from + c.outChannelsPerGroup();
        return t.rank() == 1 ? t.get(NDArrayIndex.interval(from, to)).dup()
                : t.get(NDArrayIndex.interval(from, to), NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.all()).dup();
    }
}
