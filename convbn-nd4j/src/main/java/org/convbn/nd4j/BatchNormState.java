package org.convbn.nd4j;

import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.ParameterNames;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A BatchNorm's tensors on their own: what a block folded into DEPLOY keeps to unfold later (the conv's W and b are
 * then recovered from W' and b'). References, not copies.
 *
 * @param gamma scale {@code [O]}, or null when the BN is not affine
 * @param beta shift {@code [O]}, or null when the BN is not affine
 * @param runningMean {@code [O]}
 * @param runningVar {@code [O]}, every element &gt;= 0
 */
@NotThreadSafe
public record BatchNormState(INDArray gamma, INDArray beta, INDArray runningMean, INDArray runningVar) {
    public BatchNormState {
        if (runningMean == null || runningVar == null) {
            throw new IllegalArgumentException(
                    (runningMean == null ? ParameterNames.BN_RUNNING_MEAN : ParameterNames.BN_RUNNING_VAR)
                            + ": expected an array, got null");
        }
        if ((gamma == null) != (beta == null)) {
            throw new IllegalArgumentException("gamma, beta: expected both (affine) or neither, got "
                    + (gamma == null ? "beta only" : "gamma only"));
        }
    }
}
