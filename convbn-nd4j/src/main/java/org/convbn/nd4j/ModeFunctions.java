package org.convbn.nd4j;

import java.util.LinkedHashMap;
import java.util.Map;
import net.jcip.annotations.NotThreadSafe;
import net.jcip.annotations.ThreadSafe;
import org.convbn.core.BatchNormConfig;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ParameterNames;
import org.convbn.core.ProducerConfig;
import org.convbn.core.TuneFold;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.Layout;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The math of the four modes, forward and backward, as pure functions of explicit tensors: read this file top to
 * bottom to see what each mode computes and keeps. {@link ConvBNBlock} only validates, dispatches and holds state.
 * The activation-sized work runs on {@link Kernels} (the producer, BatchNorm's per-channel passes); the weight-sized
 * work (the fold, TUNE's gradients of W, b, gamma) is written here with ND4J ops on the plain parameter arrays.
 * Every function holds for every producer kind ({@link ProducerConfig}: conv2d, conv_transpose2d, linear): the math
 * needs only that the producer is linear in W and b; what differs per kind (its forward and backward, which weight
 * entries s scales) is in {@link Producers}. Feature maps have rank 4 here (a linear block's {@code [N, F(, L)]}
 * arrives as {@code [N, F, L or 1, 1]}).
 *
 * <p>Notation per output channel c: {@code r = 1/sqrt(v + eps)}, {@code s = gamma * r}, {@code g = dL/dZ}; sums
 * run over N, H, W.
 *
 * <p>Contract: no function modifies or frees its arguments ({@link #updateRunningStatistics}, named for it, updates
 * the running statistics it is given). Results are new arrays from the kernels' arena (or the given arena) and
 * belong to the caller: the output and the gradients to release when done, the {@link SavedTensors} to close after
 * the backward that reads it.
 */
@ThreadSafe
public final class ModeFunctions {
    private ModeFunctions() {}

    /**
     * A forward's output and what it keeps for the backward.
     *
     * @param output Z, in the layout asked for
     * @param saved the tensors the backward needs
     */
    @NotThreadSafe
    public record Forward(INDArray output, SavedTensors saved) {}

    // ---------------------------------------------------------------- the fold

    /**
     * @param bn the BatchNorm configuration (eps)
     * @param gamma {@code [O]}, or null when BN is not affine; not modified
     * @param variance the running variance {@code [O]}; not modified
     * @return s = gamma / sqrt(var + eps) (1 / sqrt(var + eps) without affine), a new {@code [O]} array from
     *         {@code arena}
     */
    public static INDArray scale(Arena arena, BatchNormConfig bn, INDArray gamma, INDArray variance) {
        return device(arena, variance.dataType(), scale(bn, host(gamma), host(variance)));
    }

    // Per-channel vectors ([O], at most a few thousand values) are computed on the host, in float64: one copy in and
    // one out cost less than the ten or so ND4J ops per block their formulas would take (measured: TUNE's step spent
    // 6% of its time on them as ND4J ops).

    /** @return s = gamma / sqrt(var + eps) per channel (1 / sqrt(var + eps) when gamma is null) */
    private static double[] scale(BatchNormConfig bn, double[] gamma, double[] variance) {
        double[] s = new double[variance.length];
        for (int c = 0; c < s.length; c++) {
            s[c] = (gamma == null ? 1 : gamma[c]) / Math.sqrt(variance[c] + bn.eps());
        }
        return s;
    }

    /** @return a vector's values, or null for a null vector */
    private static double[] host(INDArray v) {
        if (v == null) {
            return null;
        }
        // One copy when the vector is its buffer (or a view of exactly its elements); else ND4J's general path.
        return v.data().length() == v.length() && v.elementWiseStride() == 1
                ? v.data().asDouble()
                : v.toDoubleVector();
    }

    /** @return a new {@code [O]} array from {@code arena} holding {@code values} */
    private static INDArray device(Arena arena, DataType type, double[] values) {
        INDArray out = arena.allocate(type, values.length);
        if (out.data().length() == values.length) {
            out.data().setData(values);
            return out;
        }
        INDArray host = Nd4j.createFromArray(values);
        out.assign(host);
        Arena.direct().release(host);
        return out;
    }

    /**
     * {@code W' = s * W}, {@code b' = beta + s * (b - mean)}: weight-sized work only (PyTorch's
     * {@code fuse_conv_bn_weights}).
     *
     * @param arena where W', b' and s come from
     * @param config the block configuration
     * @param p W, b, gamma, beta, running statistics; not modified
     * @param checkWeight whether to also scan W' for NaN and infinity (one pass over the weight, done when folding
     *                    into DEPLOY); s and b' are always checked, which catches every non-finite gamma, beta,
     *                    b, mean or variance
     * @return new W', b', s
     * @throws IllegalArgumentException if a source tensor holds NaN or infinity (named)
     */
    public static FoldedParameters fold(Arena arena, ConvBNConfig config, ConvBNParameters p, boolean checkWeight) {
        FoldedBias sb = foldedBias(arena, config, p);
        INDArray w = Producers.scaleOutputs(arena, config.producer(), p.weight(), sb.scale());
        if (checkWeight && !Double.isFinite(w.sumNumber().doubleValue())) {
            arena.release(w, sb.scale(), sb.bias());
            Tensors.requireFinite(config.producer().weightName(), p.weight());
            throw new IllegalArgumentException("folded parameters: expected finite values, got NaN or infinity from "
                    + "finite inputs (s * W overflowed)");
        }
        return new FoldedParameters(w, sb.bias(), sb.scale());
    }

    /**
     * Inverts the fold with the kept BN tensors: {@code W = W' / s}; the folded bias goes back into b when the
     * conv has one ({@code b = mean + (b' - beta) / s}), else into beta ({@code beta = b' + s * mean}).
     *
     * @param config the block configuration
     * @param folded W', b' (possibly trained in DEPLOY), not modified
     * @param kept the BN tensors kept at fold time, not modified
     * @param biasTolerance how far b' may drift from {@code -s * mean} when neither a conv bias nor a BN shift can
     *                      absorb it
     * @return new unfolded parameters (running statistics and gamma are the kept arrays themselves)
     * @throws IllegalStateException if some s is 0, or the folded bias changed and nothing can absorb it
     */
    public static ConvBNParameters unfold(
            ConvBNConfig config, FoldedParameters folded, BatchNormState kept, double biasTolerance) {
        INDArray s = scale(Arena.direct(), config.bn(), kept.gamma(), kept.runningVar());
        double[] sv = s.toDoubleVector();
        for (int c = 0; c < sv.length; c++) {
            if (sv[c] == 0 || !Double.isFinite(sv[c])) {
                throw new IllegalStateException("bn.weight: cannot unfold channel " + c + " with s = " + sv[c]
                        + "; expected a finite non-zero gamma");
            }
        }
        INDArray w = Producers.divideOutputs(config.producer(), folded.weight(), s);
        INDArray shift = kept.beta() == null ? Nd4j.zerosLike(s) : kept.beta();
        if (config.producer().bias()) {
            INDArray b = folded.bias().sub(shift).divi(s).addi(kept.runningMean());
            return ConvBNParameters.of(w, b, kept.gamma(), kept.beta(), kept.runningMean(), kept.runningVar());
        }
        INDArray absorbed = folded.bias().add(s.mul(kept.runningMean()));
        if (kept.beta() != null) {
            return ConvBNParameters.of(w, null, kept.gamma(), absorbed, kept.runningMean(), kept.runningVar());
        }
        double drift = absorbed.amaxNumber().doubleValue();
        if (drift > biasTolerance) {
            throw new IllegalStateException(ParameterNames.FOLDED_BIAS + ": changed by up to " + drift
                    + " in DEPLOY, but this block has neither a conv bias nor a BN shift to carry it back; expected a "
                    + "change <= " + biasTolerance);
        }
        return ConvBNParameters.of(w, null, null, null, kept.runningMean(), kept.runningVar());
    }

    // ---------------------------------------------------------------- TRAIN

    /**
     * {@code Y = conv(X, W) + b}; batch mean and biased variance of Y per channel;
     * {@code Z = gamma * (Y - mean_B) / sqrt(var_B + eps) + beta}. The running statistics are not touched: the
     * caller folds the batch statistics into them with {@link #updateRunningStatistics}.
     *
     * @param x the input (not modified; the saved record refers to it)
     * @param out the layout of Z
     * @return Z, and X, Y, the batch mean and variance for the backward (the batch statistics are the caller's to
     *         release; the record owns Y)
     */
    public static Forward train(Kernels k, ConvBNConfig config, ConvBNParameters p, INDArray x, Layout out) {
        INDArray y = Producers.forward(k, config.producer(), x, p.weight(), null, p.bias(), out);
        Kernels.BatchStatistics bn =
                k.batchNormTraining(y, p.gamma(), p.beta(), config.bn().eps());
        return new Forward(bn.output(), new SavedTensors.Train(x, y, bn.mean(), bn.variance(), k.arena()));
    }

    /**
     * TRAIN's forward replaying an earlier forward on the same input (a reversible network's recompute): the given
     * batch statistics normalise, so one training step updates the running statistics once.
     *
     * @param batchMean the earlier forward's batch mean, not modified (referred to by the saved record)
     * @param batchVar the earlier forward's biased batch variance, not modified (referred to by the saved record)
     */
    public static Forward trainReplay(
            Kernels k,
            ConvBNConfig config,
            ConvBNParameters p,
            INDArray x,
            INDArray batchMean,
            INDArray batchVar,
            Layout out) {
        INDArray y = Producers.forward(k, config.producer(), x, p.weight(), null, p.bias(), out);
        INDArray z = k.batchNorm(
                y, batchMean, batchVar, p.gamma(), p.beta(), config.bn().eps());
        return new Forward(z, new SavedTensors.Train(x, y, batchMean, batchVar, k.arena()));
    }

    /**
     * {@code mean <- (1-m) mean + m mean_B}, {@code var <- (1-m) var + m var_B * n / (n - 1)} (PyTorch's unbiased
     * running variance; without the factor n / (n - 1) when the config asks for DL4J's biased one).
     *
     * @param runningMean modified
     * @param runningVar modified
     * @param batchMean not modified
     * @param batchVar biased, not modified
     * @param n values per channel the batch statistics were computed over
     */
    public static void updateRunningStatistics(
            BatchNormConfig bn,
            INDArray runningMean,
            INDArray runningVar,
            INDArray batchMean,
            INDArray batchVar,
            long n) {
        double m = bn.momentum();
        double correction = bn.unbiasedRunningVar() ? n / (n - 1.0) : 1.0;
        INDArray t = batchMean.mul(m);
        runningMean.muli(1 - m).addi(t);
        Arena.direct().release(t);
        t = batchVar.mul(m * correction);
        runningVar.muli(1 - m).addi(t);
        Arena.direct().release(t);
    }

    /**
     * Through the batch statistics ({@link Kernels#batchNormTrainingBackward}): dY, dgamma, dbeta; then the conv
     * backward with dY.
     */
    public static BlockGradients trainBackward(
            Kernels k,
            ConvBNConfig config,
            ConvBNParameters p,
            SavedTensors.Train saved,
            INDArray g,
            boolean inputGradient) {
        Kernels.BatchNormGradients bn = k.batchNormTrainingBackward(
                saved.convOutput(),
                g,
                saved.batchMean(),
                saved.batchVar(),
                p.gamma(),
                config.bn().eps());
        Kernels.ConvGradients conv = Producers.backward(
                k,
                config.producer(),
                saved.input(),
                p.weight(),
                null,
                bn.input(),
                inputGradient,
                p.bias() != null,
                Layout.of(saved.input()));
        k.arena().release(bn.input());
        return unfoldedGradients(config, conv, bn.gamma(), bn.beta(), p);
    }

    // ---------------------------------------------------------------- EVAL

    /** {@code Y = conv(X, W) + b}; {@code Z = s (Y - mean) + beta} as a separate per-channel affine pass. */
    public static Forward eval(Kernels k, ConvBNConfig config, ConvBNParameters p, INDArray x, Layout out) {
        INDArray y = Producers.forward(k, config.producer(), x, p.weight(), null, p.bias(), out);
        INDArray z = k.batchNorm(
                y,
                p.runningMean(),
                p.runningVar(),
                p.gamma(),
                p.beta(),
                config.bn().eps());
        return new Forward(z, new SavedTensors.Eval(x, y, k.arena()));
    }

    /**
     * {@code dbeta = sum(g)}, {@code dgamma = sum(g (Y - mean) r)}, {@code dY = s g}
     * ({@link Kernels#batchNormBackward}), then the conv backward with dY.
     */
    public static BlockGradients evalBackward(
            Kernels k,
            ConvBNConfig config,
            ConvBNParameters p,
            SavedTensors.Eval saved,
            INDArray g,
            boolean inputGradient) {
        Kernels.BatchNormGradients bn = k.batchNormBackward(
                saved.convOutput(),
                g,
                p.runningMean(),
                p.runningVar(),
                p.gamma(),
                config.bn().eps());
        Kernels.ConvGradients conv = Producers.backward(
                k,
                config.producer(),
                saved.input(),
                p.weight(),
                null,
                bn.input(),
                inputGradient,
                p.bias() != null,
                Layout.of(saved.input()));
        k.arena().release(bn.input());
        return unfoldedGradients(config, conv, bn.gamma(), bn.beta(), p);
    }

    // ---------------------------------------------------------------- TUNE

    /**
     * The fold's per-channel part.
     *
     * @param scale s = gamma / sqrt(var + eps), {@code [C]}
     * @param bias b' = beta + s (b - mean), {@code [C]}
     */
    private record FoldedBias(INDArray scale, INDArray bias) {}

    /**
     * The fold's per-channel part: s and {@code b' = beta + s (b - mean)} (small vectors).
     *
     * @return new s and b' from {@code arena}
     */
    private static FoldedBias foldedBias(Arena arena, ConvBNConfig config, ConvBNParameters p) {
        double[] s = scale(config.bn(), host(p.gamma()), host(p.runningVar()));
        double[] mean = host(p.runningMean());
        double[] bias = host(p.bias());
        double[] beta = host(p.beta());
        double[] b = new double[s.length];
        for (int c = 0; c < s.length; c++) {
            b[c] = s[c] * ((bias == null ? 0 : bias[c]) - mean[c]) + (beta == null ? 0 : beta[c]);
            if (!Double.isFinite(s[c]) || !Double.isFinite(b[c])) {
                // Name the culprit: the fold of finite inputs with var + eps > 0 is finite.
                p.trainable(config.producer()).forEach(Tensors::requireFinite);
                p.buffers().forEach(Tensors::requireFinite);
                throw new IllegalArgumentException("folded parameters: expected finite values, got NaN or infinity "
                        + "from finite inputs at channel " + c + " (s = gamma / sqrt(var + eps) overflowed)");
            }
        }
        DataType type = p.runningVar().dataType();
        return new FoldedBias(device(arena, type, s), device(arena, type, b));
    }

    /**
     * Folds, then {@code Z = conv(X, W') + b'}: Y is never formed. With {@link TuneFold#RECOMPUTE} W' = s W is
     * never stored either: the kernels scale W as they prepare it for the conv ({@link Kernels#conv} with a weight
     * scale) and the record keeps b' and s; with {@link TuneFold#KEEP} W' is computed as an array and kept.
     */
    public static Forward tune(Kernels k, ConvBNConfig config, ConvBNParameters p, INDArray x, Layout out) {
        if (config.tuneFold() == TuneFold.RECOMPUTE) {
            FoldedBias sb = foldedBias(k.arena(), config, p);
            INDArray z = Producers.forward(k, config.producer(), x, p.weight(), sb.scale(), sb.bias(), out);
            return new Forward(z, new SavedTensors.TuneRecomputed(x, sb.bias(), sb.scale(), k.arena()));
        }
        FoldedBias sb = foldedBias(k.arena(), config, p);
        FoldedParameters f = new FoldedParameters(
                Producers.scaleOutputs(k, config.producer(), p.weight(), sb.scale()), sb.bias(), sb.scale());
        INDArray z = Producers.forward(k, config.producer(), x, f.weight(), null, f.bias(), out);
        return new Forward(z, new SavedTensors.TuneKept(x, f, k.arena()));
    }

    /**
     * One conv backward with g against the folded weight gives dX, dW', db'; the rest is weight-sized:
     * {@code dW = s dW'}, {@code db = s db'},
     * {@code ds = sum_{i,kh,kw}(dW' W) + db' (b - mean)}, {@code dgamma = r ds}, {@code dbeta = db'}.
     * Exactly EVAL's gradients, because Y = conv(X, W) + b is linear in W and b.
     */
    public static BlockGradients tuneBackward(
            Kernels k, ConvBNConfig config, ConvBNParameters p, SavedTensors saved, INDArray g, boolean inputGradient) {
        Arena arena = k.arena();
        INDArray scale;
        Kernels.ConvGradients conv;
        if (saved instanceof SavedTensors.TuneKept kept) {
            scale = kept.folded().scale();
            conv = Producers.backward(
                    k,
                    config.producer(),
                    saved.input(),
                    kept.folded().weight(),
                    null,
                    g,
                    inputGradient,
                    true,
                    Layout.of(saved.input()));
        } else if (saved instanceof SavedTensors.TuneRecomputed recomputed) {
            scale = recomputed.scale();
            // W' = s W again, bit-identical to the forward's
            conv = Producers.backward(
                    k,
                    config.producer(),
                    saved.input(),
                    p.weight(),
                    scale,
                    g,
                    inputGradient,
                    true,
                    Layout.of(saved.input()));
        } else {
            throw new IllegalArgumentException(
                    "saved: expected a TUNE record, got " + saved.getClass().getSimpleName());
        }
        INDArray dFoldedW = conv.weight();
        INDArray dFoldedB = conv.bias();
        double[] s = host(scale);
        double[] dbFolded = host(dFoldedB);
        INDArray dgamma = null;
        if (p.gamma() != null) {
            // ds = sum_{i,kh,kw} dW' W per output channel + db' (b - mean); dgamma = r ds
            INDArray dots = Producers.outputDots(k, config.producer(), dFoldedW, p.weight());
            double[] ds = host(dots);
            arena.release(dots);
            double[] mean = host(p.runningMean());
            double[] bias = host(p.bias());
            double[] variance = host(p.runningVar());
            for (int c = 0; c < ds.length; c++) {
                ds[c] = (ds[c] + dbFolded[c] * ((bias == null ? 0 : bias[c]) - mean[c]))
                        / Math.sqrt(variance[c] + config.bn().eps());
            }
            dgamma = device(arena, dFoldedB.dataType(), ds);
        }
        Producers.scaleOutputsInPlace(k, config.producer(), dFoldedW, scale); // now dW
        INDArray db = null;
        if (p.bias() != null) {
            double[] v = new double[s.length];
            for (int c = 0; c < v.length; c++) {
                v[c] = s[c] * dbFolded[c];
            }
            db = device(arena, dFoldedB.dataType(), v);
        }
        INDArray dbeta = dFoldedB;
        if (p.gamma() == null) {
            arena.release(dFoldedB);
            dbeta = null;
        }
        return unfoldedGradients(config, new Kernels.ConvGradients(conv.input(), dFoldedW, db), dgamma, dbeta, p);
    }

    // ---------------------------------------------------------------- DEPLOY

    /** {@code Z = conv(X, W') + b'} with the folded tensors as the parameters. */
    public static Forward deploy(Kernels k, ProducerConfig producer, FoldedParameters folded, INDArray x, Layout out) {
        return new Forward(
                Producers.forward(k, producer, x, folded.weight(), null, folded.bias(), out),
                new SavedTensors.Deploy(x));
    }

    /** {@code dW' = conv_bp_weight(X, g)}, {@code db' = sum(g)}, {@code dX = conv_bp_data(g, W')}. */
    public static BlockGradients deployBackward(
            Kernels k,
            ProducerConfig producer,
            FoldedParameters folded,
            SavedTensors.Deploy saved,
            INDArray g,
            boolean inputGradient) {
        Kernels.ConvGradients c = Producers.backward(
                k, producer, saved.input(), folded.weight(), null, g, inputGradient, true, Layout.of(saved.input()));
        Map<String, INDArray> grads = new LinkedHashMap<>();
        grads.put(ParameterNames.FOLDED_WEIGHT, c.weight());
        grads.put(ParameterNames.FOLDED_BIAS, c.bias());
        return new BlockGradients(c.input(), grads);
    }

    private static BlockGradients unfoldedGradients(
            ConvBNConfig config, Kernels.ConvGradients conv, INDArray dgamma, INDArray dbeta, ConvBNParameters p) {
        Map<String, INDArray> grads = new LinkedHashMap<>();
        grads.put(config.producer().weightName(), conv.weight());
        if (p.bias() != null) {
            grads.put(config.producer().biasName(), conv.bias());
        }
        if (p.gamma() != null) {
            grads.put(ParameterNames.BN_WEIGHT, dgamma);
            grads.put(ParameterNames.BN_BIAS, dbeta);
        }
        return new BlockGradients(conv.input(), grads);
    }
}
