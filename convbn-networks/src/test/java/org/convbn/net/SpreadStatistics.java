package org.convbn.net;

import java.util.SplittableRandom;
import org.convbn.core.Mode;

/**
 * BN statistics and affine spread as a trained network's: with PyTorch's initialisation BN is the identity in EVAL
 * (mean 0, variance 1, gamma 1, beta 0), so the modes' differences would not show.
 */
final class SpreadStatistics {
    private SpreadStatistics() {}

    /**
     * @param net modified: every block's running variance in [0.5, 1.5), mean and beta in [-0.1, 0.1), gamma in
     *            [0.5, 1.5), from a fixed seed; then set to {@code mode}
     * @return {@code net}
     */
    static <N extends Network> N apply(N net, Mode mode) {
        SplittableRandom rng = new SplittableRandom(77);
        for (NamedBlock b : net.blocks()) {
            var p = b.block().unfoldedParameters();
            for (int c = 0; c < p.runningVar().length(); c++) {
                p.runningVar().putScalar(c, 0.5 + rng.nextDouble());
                p.runningMean().putScalar(c, 0.2 * (rng.nextDouble() - 0.5));
                p.gamma().putScalar(c, 0.5 + rng.nextDouble());
                p.beta().putScalar(c, 0.2 * (rng.nextDouble() - 0.5));
            }
        }
        net.setMode(mode);
        return net;
    }
}
