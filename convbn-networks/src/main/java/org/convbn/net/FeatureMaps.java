package org.convbn.net;

import org.convbn.nd4j.kernel.Layout;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastMulOp;
import org.nd4j.linalg.factory.Nd4j;

/** Per-sample and per-(sample, channel) scaling of feature maps in either {@link Layout}. */
final class FeatureMaps {
    private FeatureMaps() {
    }

    /**
     * {@code out[n, c, h, w] = x[n, c, h, w] s[n, c]}.
     *
     * @param x feature map, logical {@code [N, C, H, W]}, not modified (unless it is {@code out})
     * @param s {@code [N, C]}, contiguous, not modified
     * @param out modified, shaped and laid out like x (may be x)
     */
    static void scaleChannels(INDArray x, INDArray s, INDArray out) {
        if (Layout.of(x) == Layout.NCHW) {
            Nd4j.exec(new BroadcastMulOp(x, s, out, 0, 1));
        } else {
            INDArray blocked = s.reshape(s.size(0), s.size(1) / Layout.BLOCK, Layout.BLOCK);
            Nd4j.exec(new BroadcastMulOp(x, blocked, out, 0, 1, 4));
        }
    }

    /**
     * {@code x[n] *= m[n]} for every sample n.
     *
     * @param x feature map in either layout (or any array with samples on dimension 0), modified
     * @param m {@code [N]}, not modified
     */
    static void scaleSamplesInPlace(INDArray x, INDArray m) {
        Nd4j.exec(new BroadcastMulOp(x, m, x, 0));
    }
}
