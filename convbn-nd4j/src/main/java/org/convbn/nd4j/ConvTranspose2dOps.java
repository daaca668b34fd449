package org.convbn.nd4j;

import org.convbn.core.ConvTransposeConfig;
import org.convbn.nd4j.kernel.Arena;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastAddOp;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * The transposed convolution and its backward, NCHW, PyTorch's weight layout {@code [C, O/groups, kH, kW]}.
 *
 * <p>The forward is libnd4j's {@code deconv2d} (a tensor contraction and col2im); with output padding, which that op
 * does not take, it runs unpadded and the output is cropped from its result. Groups run one by one, as in
 * {@link Conv2dOps}. The backward uses that a transposed conv is the adjoint of the conv
 * {@link ConvTransposeConfig#adjoint()} with the same weight: dX is that conv's forward of g, dW that conv's weight
 * gradient with g as its input and X as its output gradient ({@link Conv2dOps#backward}, which also computes an
 * input gradient that is dropped: libnd4j's {@code deconv2d_bp} has no output padding).
 *
 * <p>Results come from the given arena and belong to the caller; no argument is modified.
 */
final class ConvTranspose2dOps {
    /** libnd4j integer argument: 0 = NCHW. */
    private static final int NCHW = 0;
    /** libnd4j integer argument of deconv2d: 1 = [iC, oC, kH, kW], PyTorch's layout per group. */
    private static final int IOYX = 1;

    private ConvTranspose2dOps() {
    }

    /**
     * @param x {@code [N, C, H, W]}, not modified
     * @param w {@code [C, O/groups, kH, kW]}, not modified
     * @param b {@code [O]} or null, not modified
     * @return a new {@code [N, O, oH, oW]} array
     */
    static INDArray forward(Arena arena, ConvTransposeConfig c, INDArray x, INDArray w, INDArray b) {
        INDArray y = arena.allocate(x.dataType(), c.outputShape(x.shape()));
        if (c.groups() == 1) {
            deconv(arena, c, x, w, b, y);
            return y;
        }
        int ci = c.inChannelsPerGroup();
        int co = c.outChannelsPerGroup();
        for (int g = 0; g < c.groups(); g++) {
            INDArray xg = arena.allocate(x.dataType(), x.size(0), ci, x.size(2), x.size(3))
                    .assign(Conv2dOps.channels(x, g, ci));
            INDArray wg = copy(arena, rows(w, g, ci));
            INDArray bg = b == null ? null : copy(arena, rows(b, g, co));
            INDArray yg = arena.allocate(y.dataType(), y.size(0), co, y.size(2), y.size(3));
            deconv(arena, c, xg, wg, bg, yg);
            Conv2dOps.channels(y, g, co).assign(yg);
            arena.release(xg, wg, bg, yg);
        }
        return y;
    }

    /**
     * @param x the forward's input, not modified
     * @param w the forward's weight, not modified
     * @param g dL/dY {@code [N, O, oH, oW]}, not modified
     * @param inputGradient whether to compute dL/dX
     * @param biasGradient whether to compute dL/db = sum of g over N, H, W
     * @return new dL/dX (or null), dL/dW, dL/db (or null)
     */
    static Conv2dOps.Gradients backward(Arena arena, ConvTransposeConfig c, INDArray x, INDArray w, INDArray g,
                                        boolean inputGradient, boolean biasGradient) {
        INDArray dx = inputGradient ? Conv2dOps.forward(arena, c.adjoint(), g, w, null) : null;
        Conv2dOps.Gradients adjoint = Conv2dOps.backward(arena, c.adjoint(), g, w, null, x);
        arena.release(adjoint.input());
        INDArray db = null;
        if (biasGradient) {
            INDArray sums = g.sum(0, 2, 3);
            db = copy(arena, sums);
            Arena.direct().release(sums);
        }
        return new Conv2dOps.Gradients(dx, adjoint.weight(), db);
    }

    /**
     * deconv2d into {@code out}. libnd4j's op insists on its own output size, without output padding; with output
     * padding the op runs without padding into the full output {@code (H - 1) s + d (k - 1) + 1}, the window
     * {@code [pad, pad + oH)} of which is the result (rows past the full output, which output padding can add when
     * it exceeds the padding, get no contributions), and the bias is added after the crop.
     */
    private static void deconv(Arena arena, ConvTransposeConfig c, INDArray x, INDArray w, INDArray b,
                               INDArray out) {
        if (c.outputPadH() == 0 && c.outputPadW() == 0) {
            deconv(c, x, w, b, c.padH(), c.padW(), out);
            return;
        }
        long fullH = (x.size(2) - 1) * c.strideH() + (long) c.dilationH() * (c.kernelH() - 1) + 1;
        long fullW = (x.size(3) - 1) * c.strideW() + (long) c.dilationW() * (c.kernelW() - 1) + 1;
        INDArray full = arena.allocate(out.dataType(), out.size(0), out.size(1), fullH, fullW);
        deconv(c, x, w, null, 0, 0, full);
        long rows = Math.min(out.size(2), fullH - c.padH());
        long cols = Math.min(out.size(3), fullW - c.padW());
        out.assign(0);
        out.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.interval(0, rows), NDArrayIndex.interval(0, cols))
                .assign(full.get(NDArrayIndex.all(), NDArrayIndex.all(),
                        NDArrayIndex.interval(c.padH(), c.padH() + rows),
                        NDArrayIndex.interval(c.padW(), c.padW() + cols)));
        arena.release(full);
        if (b != null) {
            org.nd4j.linalg.factory.Nd4j.exec(new BroadcastAddOp(out, b, out, 1));
        }
    }

    private static void deconv(ConvTransposeConfig c, INDArray x, INDArray w, INDArray b, int padH, int padW,
                               INDArray out) {
        DynamicCustomOp.DynamicCustomOpsBuilder op = DynamicCustomOp.builder("deconv2d");
        op.addInputs(b == null ? new INDArray[] {x, w} : new INDArray[] {x, w, b});
        op.addOutputs(out);
        op.addIntegerArguments(c.kernelH(), c.kernelW(), c.strideH(), c.strideW(), padH, padW, c.dilationH(),
                c.dilationW(), 0, NCHW, IOYX);
        Conv2dOps.exec(c.dilationH() > 1 || c.dilationW() > 1, op.build());
    }

    /** A view of rows {@code [g per, (g + 1) per)} of a weight (rank 4) or bias (rank 1). */
    private static INDArray rows(INDArray t, int g, int per) {
        return t.rank() == 1 ? t.get(NDArrayIndex.interval((long) g * per, (long) (g + 1) * per))
                : t.get(NDArrayIndex.interval((long) g * per, (long) (g + 1) * per), NDArrayIndex.all(),
                NDArrayIndex.all(), NDArrayIndex.all());
    }

    private static INDArray copy(Arena arena, INDArray t) {
        return arena.allocate(t.dataType(), t.shape()).assign(t);
    }
}
