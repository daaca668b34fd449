package org.convbn.net;

import net.jcip.annotations.ThreadSafe;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/** ReLU, global average pooling and max pooling for NCHW networks, as pure forward/backward functions. */
@ThreadSafe
public final class Activations {
    private Activations() {}

    /**
     * ReLU in place.
     *
     * @param z modified: negative values become 0
     * @return {@code z}
     */
    public static INDArray reluInPlace(INDArray z) {
        return Transforms.relu(z, false);
    }

    /**
     * @param out the ReLU's output, not modified
     * @param g dL/d(out), not modified
     * @return a new array {@code g * (out > 0)}
     */
    public static INDArray reluBackward(INDArray out, INDArray g) {
        INDArray dx = Nd4j.createUninitialized(g.dataType(), g.shape());
        Nd4j.exec(DynamicCustomOp.builder("relu_bp")
                .addInputs(out, g)
                .addOutputs(dx)
                .addFloatingPointArguments(0.0)
                .build());
        return dx;
    }

    /** @return the mean over H and W of an NCHW array: a new {@code [N, C]} array */
    public static INDArray globalAveragePool(INDArray x) {
        return x.mean(2, 3);
    }

    /**
     * @param g dL/d(pooled) {@code [N, C]}, not modified
     * @param inputShape the pooled input's shape {@code [N, C, H, W]}
     * @return a new {@code [N, C, H, W]} array, each position {@code g / (H W)}
     */
    public static INDArray globalAveragePoolBackward(INDArray g, long[] inputShape) {
        double area = (double) inputShape[2] * inputShape[3];
        return g.div(area).reshape(inputShape[0], inputShape[1], 1, 1).broadcast(inputShape);
    }

    /**
     * Max pooling (padding never wins), libnd4j's {@code maxpool2d}.
     *
     * @param x {@code [N, C, H, W]}, not modified
     * @return a new {@code [N, C, oH, oW]} array, {@code oH = floor((H + 2 pad - kernel) / stride) + 1}
     */
    public static INDArray maxPool(INDArray x, int kernel, int stride, int pad) {
        long oh = (x.size(2) + 2L * pad - kernel) / stride + 1;
        long ow = (x.size(3) + 2L * pad - kernel) / stride + 1;
        INDArray out = Nd4j.createUninitialized(x.dataType(), x.size(0), x.size(1), oh, ow);
        Nd4j.exec(DynamicCustomOp.builder("maxpool2d")
                .addInputs(x)
                .addOutputs(out)
                .addIntegerArguments(poolArgs(kernel, stride, pad))
                .build());
        return out;
    }

    /**
     * @param x the pooled input, not modified
     * @param g dL/d(out), not modified
     * @return a new array shaped like {@code x}: each gradient routed to the maximum of its window
     */
    public static INDArray maxPoolBackward(INDArray x, INDArray g, int kernel, int stride, int pad) {
        INDArray dx = Nd4j.createUninitialized(x.dataType(), x.shape());
        Nd4j.exec(DynamicCustomOp.builder("maxpool2d_bp")
                .addInputs(x, g)
                .addOutputs(dx)
                .addIntegerArguments(poolArgs(kernel, stride, pad))
                .build());
        return dx;
    }

    /** {kH, kW, sH, sW, pH, pW, dH, dW, same=0, extra=0, NCHW=0}. */
    private static int[] poolArgs(int kernel, int stride, int pad) {
        return new int[] {kernel, kernel, stride, stride, pad, pad, 1, 1, 0, 0, 0};
    }
}
