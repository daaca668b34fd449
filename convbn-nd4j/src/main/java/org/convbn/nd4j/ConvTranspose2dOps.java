package org.convbn.nd4j;

import org.convbn.core.ConvTransposeConfig;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastAddOp;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The transposed convolution and its backward, NCHW, PyTorch's weight layout {@code [C, O/groups, kH, kW]}.
 *
 * <p>The forward is libnd4j's {@code deconv2d} (a tensor contraction and col2im); with output padding, which that op
 * does not take, it runs unpadded and the output is cropped from its result. Groups run one by one, as in
 * {@link Conv2dOps}. The backward is libnd4j's {@code deconv2d_bp} (dX as the conv of g with W, dW by im2col of g
 * and a contraction with X), run without padding on g placed in the unpadded output, since that op takes no output
 * padding either.
 *
 * <p>Results come from the given arena and belong to the caller; no argument is modified.
 */
final class ConvTranspose2dOps {
    /** libnd4j integer argument: 0 = NCHW. */
    private static final int NCHW = 0;
    /** libnd4j integer argument of deconv2d: 1 = [iC, oC, kH, kW], PyTorch's layout per group. */
    private static final int IOYX = 1;

    private ConvTranspose2dOps() {}

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
            INDArray xg = copy(arena, Conv2dOps.channels(x, g, ci));
            INDArray wg = copy(arena, Conv2dOps.outputs(w, g, ci));
            INDArray bg = b == null ? null : copy(arena, Conv2dOps.outputs(b, g, co));
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
    static Kernels.ConvGradients backward(
            Arena arena,
            ConvTransposeConfig c,
            INDArray x,
            INDArray w,
            INDArray g,
            boolean inputGradient,
            boolean biasGradient) {
        INDArray full = unpadded(arena, c, x, g);
        INDArray dx = arena.allocate(x.dataType(), x.shape());
        INDArray dw = arena.allocate(w.dataType(), w.shape());
        if (c.groups() == 1) {
            deconvBackward(c, x, w, full, dx, dw);
        } else {
            int ci = c.inChannelsPerGroup();
            int co = c.outChannelsPerGroup();
            for (int group = 0; group < c.groups(); group++) {
                INDArray xg = copy(arena, Conv2dOps.channels(x, group, ci));
                INDArray wg = copy(arena, Conv2dOps.outputs(w, group, ci));
                INDArray gg = copy(arena, Conv2dOps.channels(full, group, co));
                INDArray dxg = arena.allocate(xg.dataType(), xg.shape());
                INDArray dwg = arena.allocate(wg.dataType(), wg.shape());
                deconvBackward(c, xg, wg, gg, dxg, dwg);
                Conv2dOps.channels(dx, group, ci).assign(dxg);
                Conv2dOps.outputs(dw, group, ci).assign(dwg);
                arena.release(xg, wg, gg, dxg, dwg);
            }
        }
        if (full != g) {
            arena.release(full);
        }
        if (!inputGradient) {
            arena.release(dx);
            dx = null;
        }
        INDArray db = null;
        if (biasGradient) {
            INDArray sums = g.sum(0, 2, 3);
            db = copy(arena, sums);
            Arena.direct().release(sums);
        }
        return new Kernels.ConvGradients(dx, dw, db);
    }

    /** @return the unpadded output size {@code (in - 1) s + d (k - 1) + 1} of each spatial dimension */
    private static long[] fullSize(ConvTransposeConfig c, INDArray x) {
        return new long[] {
            (x.size(2) - 1) * c.strideH() + (long) c.dilationH() * (c.kernelH() - 1) + 1,
            (x.size(3) - 1) * c.strideW() + (long) c.dilationW() * (c.kernelW() - 1) + 1
        };
    }

    /**
     * The output gradient placed where its rows sit in the unpadded output: the adjoint of the crop the padding
     * makes. Rows output padding adds past the unpadded output received only the bias, so their gradient reaches
     * neither X nor W. g itself when there is no padding of either kind.
     */
    private static INDArray unpadded(Arena arena, ConvTransposeConfig c, INDArray x, INDArray g) {
        if (c.padH() == 0 && c.padW() == 0 && c.outputPadH() == 0 && c.outputPadW() == 0) {
            return g;
        }
        long[] full = fullSize(c, x);
        INDArray out = arena.allocate(g.dataType(), g.size(0), g.size(1), full[0], full[1])
                .assign(0);
        long rows = Math.min(g.size(2), full[0] - c.padH());
        long cols = Math.min(g.size(3), full[1] - c.padW());
        window(out, c.padH(), c.padW(), rows, cols).assign(window(g, 0, 0, rows, cols));
        return out;
    }

    /** libnd4j's deconv2d_bp without padding: dX through a conv of g, dW through im2col of g and a contraction. */
    private static void deconvBackward(
            ConvTransposeConfig c, INDArray x, INDArray w, INDArray g, INDArray dx, INDArray dw) {
        DynamicCustomOp.DynamicCustomOpsBuilder op = DynamicCustomOp.builder("deconv2d_bp");
        op.addInputs(x, w, g);
        op.addOutputs(dx, dw);
        op.addIntegerArguments(
                c.kernelH(), c.kernelW(), c.strideH(), c.strideW(), 0, 0, c.dilationH(), c.dilationW(), 0, NCHW, IOYX);
        Conv2dOps.exec(c.dilationH() > 1 || c.dilationW() > 1, op.build());
    }

    /**
     * deconv2d into {@code out}. libnd4j's op insists on its own output size, without output padding; with output
     * padding the op runs without padding into the full output {@code (H - 1) s + d (k - 1) + 1}, the window
     * {@code [pad, pad + oH)} of which is the result (rows past the full output, which output padding can add when
     * it exceeds the padding, get no contributions), and the bias is added after the crop.
     */
    private static void deconv(Arena arena, ConvTransposeConfig c, INDArray x, INDArray w, INDArray b, INDArray out) {
        if (c.outputPadH() == 0 && c.outputPadW() == 0) {
            deconv(c, x, w, b, c.padH(), c.padW(), out);
            return;
        }
        long[] size = fullSize(c, x);
        long fullH = size[0];
        long fullW = size[1];
        INDArray full = arena.allocate(out.dataType(), out.size(0), out.size(1), fullH, fullW);
        deconv(c, x, w, null, 0, 0, full);
        long rows = Math.min(out.size(2), fullH - c.padH());
        long cols = Math.min(out.size(3), fullW - c.padW());
        out.assign(0);
        window(out, 0, 0, rows, cols).assign(window(full, c.padH(), c.padW(), rows, cols));
        arena.release(full);
        if (b != null) {
            Nd4j.exec(new BroadcastAddOp(out, b, out, 1));
        }
    }

    private static void deconv(
            ConvTransposeConfig c, INDArray x, INDArray w, INDArray b, int padH, int padW, INDArray out) {
        DynamicCustomOp.DynamicCustomOpsBuilder op = DynamicCustomOp.builder("deconv2d");
        op.addInputs(b == null ? new INDArray[] {x, w} : new INDArray[] {x, w, b});
        op.addOutputs(out);
        op.addIntegerArguments(
                c.kernelH(),
                c.kernelW(),
                c.strideH(),
                c.strideW(),
                padH,
                padW,
                c.dilationH(),
                c.dilationW(),
                0,
                NCHW,
                IOYX);
        Conv2dOps.exec(c.dilationH() > 1 || c.dilationW() > 1, op.build());
    }

    /** A view of {@code rows x cols} spatial positions of an NCHW array from {@code (top, left)}. */
    private static INDArray window(INDArray t, long top, long left, long rows, long cols) {
        return Tensors.slice(Tensors.slice(t, 2, top, top + rows), 3, left, left + cols);
    }

    private static INDArray copy(Arena arena, INDArray t) {
        return arena.allocate(t.dataType(), t.shape()).assign(t);
    }
}
