package org.convbn.transfer;

import java.util.Arrays;
import net.jcip.annotations.ThreadSafe;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastAddOp;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastMulOp;
import org.nd4j.linalg.dataset.api.DataSet;
import org.nd4j.linalg.dataset.api.DataSetPreProcessor;
import org.nd4j.linalg.factory.Nd4j;

/**
 * torchvision's ImageNet input normalisation on RGB pixels in 0..255, {@code NCHW}:
 * {@code x = (p / 255 - mean[c]) / std[c]} with mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), what
 * torchvision's pretrained weights expect. Modifies the features in place.
 */
@ThreadSafe
public final class ImageNetNormalization implements DataSetPreProcessor {
    /** Per-channel mean of ImageNet, R, G, B, on 0..1 pixels. */
    public static final double[] MEAN = {0.485, 0.456, 0.406};
    /** Per-channel standard deviation of ImageNet, R, G, B, on 0..1 pixels. */
    public static final double[] STD = {0.229, 0.224, 0.225};

    @Override
    public void preProcess(DataSet data) {
        apply(data.getFeatures());
    }

    /**
     * @param x {@code [N, 3, H, W]} RGB in 0..255, modified: normalised in place
     * @throws IllegalArgumentException for another shape
     */
    public static void apply(INDArray x) {
        if (x.rank() != 4 || x.size(1) != 3) {
            throw new IllegalArgumentException("features: expected [N, 3, H, W], got " + Arrays.toString(x.shape()));
        }
        INDArray scale = Nd4j.create(x.dataType(), 3);
        INDArray shift = Nd4j.create(x.dataType(), 3);
        for (int c = 0; c < 3; c++) {
            scale.putScalar(c, 1 / (255 * STD[c]));
            shift.putScalar(c, -MEAN[c] / STD[c]);
        }
        Nd4j.exec(new BroadcastMulOp(x, scale, x, 1));
        Nd4j.exec(new BroadcastAddOp(x, shift, x, 1));
    }
}
