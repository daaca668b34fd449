package org.convbn.testkit.reference;

import java.util.LinkedHashMap;
import java.util.Map;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.Mode;
import org.convbn.core.ParameterNames;
import org.convbn.core.ProducerConfig;

/**
 * The float64 oracle of the four modes, written straight from the definitions (see docs/design.md): every
 * per-channel quantity is a plain loop, no identity that the fast implementation relies on is used here.
 * In particular the TUNE backward is computed with the EVAL formulas, which define it, so a test comparing the
 * fast TUNE backward with this oracle checks the fold-based gradient identities.
 *
 * <p>Notation, per output channel c: {@code r = 1/sqrt(v + eps)}, {@code s = gamma * r}. All methods allocate
 * their results and modify none of their arguments.
 */
public final class ReferenceConvBN {
    private ReferenceConvBN() {}

    /**
     * The result of a forward.
     *
     * @param output Z {@code [N, O, oH, oW]}
     * @param runningMean the running mean after the forward (updated in TRAIN, the same values otherwise)
     * @param runningVar the running variance after the forward (updated in TRAIN, the same values otherwise)
     */
    public record Forward(Tensor output, Tensor runningMean, Tensor runningVar) {}

    /**
     * Gradients of a scalar loss.
     *
     * @param input dL/dX
     * @param parameters dL/dparameter by {@link ParameterNames} name
     */
    public record Gradients(Tensor input, Map<String, Tensor> parameters) {}

    /**
     * The fold of BN into the conv: {@code W' = s * W}, {@code b' = beta + s * (b - mean)}.
     *
     * @param weight W' {@code [O, C/groups, kH, kW]}
     * @param bias b' {@code [O]}
     */
    public record Folded(Tensor weight, Tensor bias) {}

    /**
     * Folds BN into the conv.
     *
     * @param config the block configuration
     * @param p the unfolded parameters, not modified
     * @return W' and b'
     */
    public static Folded fold(ConvBNConfig config, ReferenceParameters p) {
        int o = config.channels();
        Tensor w = p.weight().copy();
        for (int k = 0; k < w.size(); k++) {
            w.data()[k] *= scale(config, p, config.producer().outputChannelOf(k));
        }
        Tensor b = Tensor.zeros(o);
        for (int c = 0; c < o; c++) {
            b.data()[c] = p.betaAt(c)
                    + scale(config, p, c) * (p.biasAt(c) - p.runningMean().data()[c]);
        }
        return new Folded(w, b);
    }

    /**
     * Forward in TRAIN, EVAL or TUNE (use {@link #deployForward} for DEPLOY's folded parameters).
     *
     * @param config the block configuration
     * @param mode TRAIN, EVAL or TUNE
     * @param p the parameters, not modified
     * @param x input {@code [N, C, H, W]}, not modified
     * @return Z and the running statistics after the step
     */
    public static Forward forward(ConvBNConfig config, Mode mode, ReferenceParameters p, Tensor x) {
        p.validate(config);
        return switch (mode) {
            case TRAIN -> trainForward(config, p, x);
            case EVAL ->
                new Forward(
                        evalAffine(config, p, ReferenceProducers.forward(config.producer(), x, p.weight(), p.bias())),
                        p.runningMean().copy(),
                        p.runningVar().copy());
            case TUNE ->
                new Forward(
                        deployForward(config.producer(), fold(config, p), x),
                        p.runningMean().copy(),
                        p.runningVar().copy());
            case DEPLOY ->
                throw new IllegalArgumentException("mode: DEPLOY runs on folded parameters; use deployForward");
        };
    }

    /** DEPLOY's forward: {@code Z = conv(X, W') + b'}. Nothing is modified. */
    public static Tensor deployForward(ProducerConfig producer, Folded folded, Tensor x) {
        return ReferenceProducers.forward(producer, x, folded.weight(), folded.bias());
    }

    /**
     * Backward of {@code L} with {@code dL/dZ = g} in TRAIN, EVAL or TUNE (TUNE's gradients are EVAL's by
     * definition).
     *
     * @param config the block configuration
     * @param mode TRAIN, EVAL or TUNE
     * @param p the parameters, not modified
     * @param x the forward's input, not modified
     * @param g dL/dZ, not modified
     * @return dX and the gradients of W, b (if any), gamma and beta (if affine)
     */
    public static Gradients backward(ConvBNConfig config, Mode mode, ReferenceParameters p, Tensor x, Tensor g) {
        p.validate(config);
        ProducerConfig producer = config.producer();
        Tensor y = ReferenceProducers.forward(producer, x, p.weight(), p.bias());
        int o = config.channels();
        int plane = plane(y);
        int count = y.dim(0) * plane;
        Tensor dy = Tensor.zeros(y.shape());
        double[] dgamma = new double[o];
        double[] dbeta = new double[o];
        for (int c = 0; c < o; c++) {
            double mean;
            double r;
            if (mode == Mode.TRAIN) {
                mean = channelMean(y, c);
                r = 1.0
                        / Math.sqrt(
                                channelBiasedVariance(y, c, mean) + config.bn().eps());
            } else if (mode == Mode.EVAL || mode == Mode.TUNE) {
                mean = p.runningMean().data()[c];
                r = 1.0 / Math.sqrt(p.runningVar().data()[c] + config.bn().eps());
            } else {
                throw new IllegalArgumentException("mode: DEPLOY runs on folded parameters; use deployBackward");
            }
            double gamma = p.gammaAt(c);
            double sumG = 0;
            double sumGXhat = 0;
            for (int n = 0; n < y.dim(0); n++) {
                int base = (n * o + c) * plane;
                for (int k = 0; k < plane; k++) {
                    double xhat = (y.data()[base + k] - mean) * r;
                    sumG += g.data()[base + k];
                    sumGXhat += g.data()[base + k] * xhat;
                }
            }
            dbeta[c] = sumG;
            dgamma[c] = sumGXhat;
            for (int n = 0; n < y.dim(0); n++) {
                int base = (n * o + c) * plane;
                for (int k = 0; k < plane; k++) {
                    double gi = g.data()[base + k];
                    if (mode == Mode.TRAIN) {
                        // Through the batch statistics: dY = gamma*r*(g - mean(g) - xhat*mean(g*xhat)).
                        double xhat = (y.data()[base + k] - mean) * r;
                        dy.data()[base + k] = gamma * r * (gi - sumG / count - xhat * sumGXhat / count);
                    } else {
                        dy.data()[base + k] = gamma * r * gi;
                    }
                }
            }
        }
        Map<String, Tensor> grads = new LinkedHashMap<>();
        grads.put(producer.weightName(), ReferenceProducers.backwardWeight(producer, x, dy));
        if (producer.bias()) {
            grads.put(producer.biasName(), channelSums(dy));
        }
        if (config.bn().affine()) {
            grads.put(ParameterNames.BN_WEIGHT, new Tensor(new int[] {o}, dgamma));
            grads.put(ParameterNames.BN_BIAS, new Tensor(new int[] {o}, dbeta));
        }
        return new Gradients(ReferenceProducers.backwardInput(producer, x.shape(), p.weight(), dy), grads);
    }

    /**
     * DEPLOY's backward: gradients of the folded W' and b' and of X. Nothing is modified.
     */
    public static Gradients deployBackward(ProducerConfig producer, Folded folded, Tensor x, Tensor g) {
        Map<String, Tensor> grads = new LinkedHashMap<>();
        grads.put(ParameterNames.FOLDED_WEIGHT, ReferenceProducers.backwardWeight(producer, x, g));
        grads.put(ParameterNames.FOLDED_BIAS, channelSums(g));
        return new Gradients(ReferenceProducers.backwardInput(producer, x.shape(), folded.weight(), g), grads);
    }

    /** @return s[c] = gamma[c] / sqrt(var[c] + eps) */
    public static double scale(ConvBNConfig config, ReferenceParameters p, int c) {
        return p.gammaAt(c) / Math.sqrt(p.runningVar().data()[c] + config.bn().eps());
    }

    private static Forward trainForward(ConvBNConfig config, ReferenceParameters p, Tensor x) {
        Tensor y = ReferenceProducers.forward(config.producer(), x, p.weight(), p.bias());
        int o = config.channels();
        int plane = plane(y);
        long count = (long) y.dim(0) * plane;
        double m = config.bn().momentum();
        Tensor z = Tensor.zeros(y.shape());
        Tensor runMean = p.runningMean().copy();
        Tensor runVar = p.runningVar().copy();
        for (int c = 0; c < o; c++) {
            double mean = channelMean(y, c);
            double var = channelBiasedVariance(y, c, mean);
            double r = 1.0 / Math.sqrt(var + config.bn().eps());
            for (int n = 0; n < y.dim(0); n++) {
                int base = (n * o + c) * plane;
                for (int k = 0; k < plane; k++) {
                    z.data()[base + k] = p.gammaAt(c) * (y.data()[base + k] - mean) * r + p.betaAt(c);
                }
            }
            runMean.data()[c] = (1 - m) * runMean.data()[c] + m * mean;
            double batchVar = config.bn().unbiasedRunningVar() ? var * count / (count - 1) : var;
            runVar.data()[c] = (1 - m) * runVar.data()[c] + m * batchVar;
        }
        return new Forward(z, runMean, runVar);
    }

    private static Tensor evalAffine(ConvBNConfig config, ReferenceParameters p, Tensor y) {
        int o = config.channels();
        int plane = plane(y);
        Tensor z = Tensor.zeros(y.shape());
        for (int c = 0; c < o; c++) {
            double r = 1.0 / Math.sqrt(p.runningVar().data()[c] + config.bn().eps());
            double mean = p.runningMean().data()[c];
            for (int n = 0; n < y.dim(0); n++) {
                int base = (n * o + c) * plane;
                for (int k = 0; k < plane; k++) {
                    z.data()[base + k] = p.gammaAt(c) * (y.data()[base + k] - mean) * r + p.betaAt(c);
                }
            }
        }
        return z;
    }

    private static double channelMean(Tensor y, int c) {
        int o = y.dim(1);
        int plane = plane(y);
        double sum = 0;
        for (int n = 0; n < y.dim(0); n++) {
            int base = (n * o + c) * plane;
            for (int k = 0; k < plane; k++) {
                sum += y.data()[base + k];
            }
        }
        return sum / ((double) y.dim(0) * plane);
    }

    private static double channelBiasedVariance(Tensor y, int c, double mean) {
        int o = y.dim(1);
        int plane = plane(y);
        double sum = 0;
        for (int n = 0; n < y.dim(0); n++) {
            int base = (n * o + c) * plane;
            for (int k = 0; k < plane; k++) {
                double d = y.data()[base + k] - mean;
                sum += d * d;
            }
        }
        return sum / ((double) y.dim(0) * plane);
    }

    /** @return values per (sample, channel): H W of a feature map, L of a sequence, 1 of a {@code [N, F]} batch */
    private static int plane(Tensor t) {
        return t.size() / (t.dim(0) * t.dim(1));
    }

    /** @return per-channel sums over N, H, W of an NCHW tensor */
    static Tensor channelSums(Tensor t) {
        int o = t.dim(1);
        int plane = plane(t);
        Tensor s = Tensor.zeros(o);
        for (int n = 0; n < t.dim(0); n++) {
            for (int c = 0; c < o; c++) {
                int base = (n * o + c) * plane;
                for (int k = 0; k < plane; k++) {
                    s.data()[c] += t.data()[base + k];
                }
            }
        }
        return s;
    }
}
