package org.convbn.nd4j;

import java.util.LinkedHashMap;
import java.util.Map;

import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.convbn.core.ParameterNames;
import org.convbn.core.TuneFold;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastDivOp;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastMulOp;
import org.nd4j.linalg.api.ops.impl.reduce3.Dot;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * The math of the four modes, forward and backward, as pure functions: read this file top to bottom to see
 * what each mode computes and keeps. {@link ConvBNBlock} only validates, dispatches and holds state.
 *
 * <p>Notation per output channel c: {@code r = 1/sqrt(v + eps)}, {@code s = gamma * r}, {@code g = dL/dZ}; sums
 * run over N, H, W. Unless said otherwise a function allocates its results and modifies none of its arguments;
 * the only exceptions are {@link #train}, which updates the running statistics in place, and the backwards,
 * which free their activation-sized temporaries and the conv output Y that the forward made and saved (see
 * {@link NativeMemory}), so that a step's peak memory is what it needs.
 */
final class ModeFunctions {
    private ModeFunctions() {
    }

    /** A forward's output and what it keeps for the backward. */
    record Forward(INDArray output, SavedTensors saved) {
    }

    // ---------------------------------------------------------------- the fold

    /** @return r = 1 / sqrt(v + eps), a new [O] array */
    static INDArray inverseStd(ConvBNConfig config, INDArray variance) {
        return Transforms.sqrt(variance.add(config.bn().eps()), false).rdivi(1.0);
    }

    /** @return s = gamma * r (r without affine), a new [O] array */
    static INDArray scale(ConvBNConfig config, ConvBNParameters p) {
        INDArray r = inverseStd(config, p.runningVar());
        return p.gamma() == null ? r : r.muli(p.gamma());
    }

    /**
     * {@code W' = s * W}, {@code b' = beta + s * (b - mean)}: weight-sized work only.
     *
     * @param checkWeight whether to also scan W' for NaN and infinity (one pass over the weight, done when folding
     *                    into DEPLOY); s and b' are always checked, which catches every non-finite gamma, beta,
     *                    b, mean or variance
     * @throws IllegalArgumentException if a source tensor holds NaN or infinity (named)
     */
    static FoldedParameters fold(ConvBNConfig config, ConvBNParameters p, boolean checkWeight) {
        INDArray s = scale(config, p);
        INDArray w = Tensors.scaleOutputChannels(p.weight(), s);
        INDArray b = p.biasOrZeros().sub(p.runningMean()).muli(s);
        if (p.beta() != null) {
            b.addi(p.beta());
        }
        double check = s.sumNumber().doubleValue() + b.sumNumber().doubleValue()
                + (checkWeight ? w.sumNumber().doubleValue() : 0);
        if (!Double.isFinite(check)) {
            // Name the culprit: the fold of finite inputs with var + eps > 0 is finite.
            p.trainable().forEach(Tensors::requireFinite);
            p.buffers().forEach(Tensors::requireFinite);
            throw new IllegalArgumentException("folded parameters: expected finite values, got NaN or infinity from "
                    + "finite inputs (s = gamma / sqrt(var + eps) overflowed)");
        }
        return new FoldedParameters(w, b, s);
    }

    /**
     * Inverts the fold with the kept BN tensors: {@code W = W' / s}; the folded bias goes back into b when the
     * conv has one ({@code b = mean + (b' - beta) / s}), else into beta ({@code beta = b' + s * mean}).
     *
     * @param config the block configuration
     * @param folded W', b' (possibly trained in DEPLOY), not modified
     * @param kept the BN tensors kept at fold time (its weight and bias are null), not modified
     * @param biasTolerance how far b' may drift from {@code -s * mean} when neither a conv bias nor a BN shift can
     *                      absorb it
     * @return new unfolded parameters (running statistics and gamma are the kept arrays themselves)
     * @throws IllegalStateException if some s is 0, or the folded bias changed and nothing can absorb it
     */
    static ConvBNParameters unfold(ConvBNConfig config, FoldedParameters folded, ConvBNParameters kept,
                                   double biasTolerance) {
        INDArray s = scale(config, kept);
        double[] sv = s.toDoubleVector();
        for (int c = 0; c < sv.length; c++) {
            if (sv[c] == 0 || !Double.isFinite(sv[c])) {
                throw new IllegalStateException("bn.weight: cannot unfold channel " + c + " with s = " + sv[c]
                        + "; expected a finite non-zero gamma");
            }
        }
        INDArray w = Nd4j.createUninitialized(folded.weight().dataType(), folded.weight().shape());
        Nd4j.exec(new BroadcastDivOp(folded.weight(), s, w, 0));
        INDArray shift = kept.beta() == null ? Nd4j.zerosLike(s) : kept.beta();
        if (config.conv().bias()) {
            INDArray b = folded.bias().sub(shift).divi(s).addi(kept.runningMean());
            return new ConvBNParameters(w, b, kept.gamma(), kept.beta(), kept.runningMean(), kept.runningVar());
        }
        INDArray absorbed = folded.bias().add(s.mul(kept.runningMean()));
        if (kept.beta() != null) {
            return new ConvBNParameters(w, null, kept.gamma(), absorbed, kept.runningMean(), kept.runningVar());
        }
        double drift = absorbed.amaxNumber().doubleValue();
        if (drift > biasTolerance) {
            throw new IllegalStateException(ParameterNames.FOLDED_BIAS + ": changed by up to " + drift
                    + " in DEPLOY, but this block has neither a conv bias nor a BN shift to carry it back; expected a "
                    + "change <= " + biasTolerance);
        }
        return new ConvBNParameters(w, null, null, null, kept.runningMean(), kept.runningVar());
    }

    // ---------------------------------------------------------------- TRAIN

    /**
     * {@code Y = conv(X, W) + b}; batch mean and biased variance of Y per channel;
     * {@code Z = gamma * (Y - mean_B) / sqrt(var_B + eps) + beta}. Updates {@code p.runningMean()} and
     * {@code p.runningVar()} in place with momentum m: {@code mean <- (1-m) mean + m mean_B},
     * {@code var <- (1-m) var + m var_B * n / (n - 1)} (PyTorch's unbiased running variance; without the factor
     * n / (n - 1) when the config asks for DL4J's biased one).
     */
    static Forward train(ConvBNConfig config, ConvBNParameters p, INDArray x) {
        return train(config, p, x, null, null);
    }

    /**
     * TRAIN's forward; with {@code replayMean} and {@code replayVar} given, a replay of an earlier forward on the
     * same input (a reversible network's recompute): those batch statistics normalise and the running statistics
     * are left alone, so one training step updates them once.
     */
    static Forward train(ConvBNConfig config, ConvBNParameters p, INDArray x, INDArray replayMean,
                         INDArray replayVar) {
        INDArray y = Conv2dOps.forward(config.conv(), x, p.weight(), p.bias());
        long n = y.length() / y.size(1);
        boolean replay = replayMean != null;
        INDArray mean = replay ? replayMean : y.mean(0, 2, 3);
        INDArray var = replay ? replayVar : y.var(false, 0, 2, 3);
        INDArray sB = inverseStd(config, var);
        if (p.gamma() != null) {
            sB.muli(p.gamma());
        }
        INDArray shift = mean.mul(sB).negi();
        if (p.beta() != null) {
            shift.addi(p.beta());
        }
        INDArray z = Tensors.channelAffine(y, sB, shift);
        if (!replay) {
            double m = config.bn().momentum();
            p.runningMean().muli(1 - m).addi(mean.mul(m));
            double correction = config.bn().unbiasedRunningVar() ? n / (n - 1.0) : 1.0;
            p.runningVar().muli(1 - m).addi(var.mul(m * correction));
        }
        return new Forward(z, new SavedTensors.Train(x, y, mean, var));
    }

    /**
     * Through the batch statistics, with {@code xhat = (Y - mean_B) r_B}:
     * {@code dbeta = sum(g)}, {@code dgamma = sum(g xhat)},
     * {@code dY = gamma r_B (g - dbeta / n - xhat dgamma / n)}, then the conv backward with dY.
     */
    static BlockGradients trainBackward(ConvBNConfig config, ConvBNParameters p, SavedTensors.Train saved,
                                        INDArray g) {
        INDArray y = saved.convOutput();
        long n = y.length() / y.size(1);
        INDArray rB = inverseStd(config, saved.batchVar());
        INDArray xhat = Tensors.channelAffine(y, rB, saved.batchMean().mul(rB).negi());
        INDArray dbeta = Tensors.channelSums(g);
        INDArray gXhat = xhat.mul(g);
        INDArray dgamma = Tensors.channelSums(gXhat);
        NativeMemory.release(gXhat);
        INDArray a = p.gamma() == null ? rB : rB.mul(p.gamma());
        // dY = a*g - (a*dbeta/n) - xhat * (a*dgamma/n); xhat is overwritten with its term.
        INDArray dy = Tensors.channelAffine(g, a, a.mul(dbeta).divi(-n));
        Nd4j.exec(new BroadcastMulOp(xhat, a.mul(dgamma).divi(-n), xhat, 1));
        dy.addi(xhat);
        NativeMemory.release(xhat, y); // Y was the block's own, made by the forward
        Conv2dOps.Gradients conv = Conv2dOps.backward(config.conv(), saved.input(), p.weight(), p.bias(), dy);
        NativeMemory.release(dy);
        return unfoldedGradients(conv, dgamma, dbeta, p);
    }

    // ---------------------------------------------------------------- EVAL

    /** {@code Y = conv(X, W) + b}; {@code Z = s (Y - mean) + beta} as a separate per-channel affine pass. */
    static Forward eval(ConvBNConfig config, ConvBNParameters p, INDArray x) {
        INDArray y = Conv2dOps.forward(config.conv(), x, p.weight(), p.bias());
        INDArray s = scale(config, p);
        INDArray shift = p.runningMean().mul(s).negi();
        if (p.beta() != null) {
            shift.addi(p.beta());
        }
        return new Forward(Tensors.channelAffine(y, s, shift), new SavedTensors.Eval(x, y));
    }

    /**
     * {@code dbeta = sum(g)}, {@code dgamma = r (sum(g Y) - mean sum(g))} (= sum(g (Y - mean) r)),
     * {@code dY = s g}, then the conv backward with dY.
     */
    static BlockGradients evalBackward(ConvBNConfig config, ConvBNParameters p, SavedTensors.Eval saved,
                                       INDArray g) {
        INDArray s = scale(config, p);
        INDArray dbeta = Tensors.channelSums(g);
        INDArray gY = g.mul(saved.convOutput());
        INDArray dgamma = Tensors.channelSums(gY).subi(p.runningMean().mul(dbeta))
                .muli(inverseStd(config, p.runningVar()));
        NativeMemory.release(gY, saved.convOutput()); // Y was the block's own, made by the forward
        INDArray dy = Nd4j.createUninitialized(g.dataType(), g.shape());
        Nd4j.exec(new BroadcastMulOp(g, s, dy, 1));
        Conv2dOps.Gradients conv = Conv2dOps.backward(config.conv(), saved.input(), p.weight(), p.bias(), dy);
        NativeMemory.release(dy);
        return unfoldedGradients(conv, dgamma, dbeta, p);
    }

    // ---------------------------------------------------------------- TUNE

    /**
     * Folds (weight-sized work), then {@code Z = conv(X, W') + b'}: Y is never formed. Keeps W' for the backward,
     * or drops it at once with {@link TuneFold#RECOMPUTE}.
     */
    static Forward tune(ConvBNConfig config, ConvBNParameters p, INDArray x) {
        FoldedParameters folded = fold(config, p, false);
        INDArray z = Conv2dOps.forward(config.conv(), x, folded.weight(), folded.bias());
        if (config.tuneFold() == TuneFold.RECOMPUTE) {
            NativeMemory.release(folded.weight());
            folded = new FoldedParameters(null, folded.bias(), folded.scale());
        }
        return new Forward(z, new SavedTensors.Tune(x, folded));
    }

    /**
     * One conv backward with g against the folded weight gives dX, dW', db'; the rest is weight-sized:
     * {@code dW = s dW'}, {@code db = s db'},
     * {@code ds = sum_{i,kh,kw}(dW' W) + db' (b - mean)}, {@code dgamma = r ds}, {@code dbeta = db'}.
     * Exactly EVAL's gradients, because Y = conv(X, W) + b is linear in W and b.
     */
    static BlockGradients tuneBackward(ConvBNConfig config, ConvBNParameters p, SavedTensors.Tune saved,
                                       INDArray g) {
        FoldedParameters f = saved.folded();
        INDArray foldedWeight = f.weight() != null ? f.weight() : Tensors.scaleOutputChannels(p.weight(), f.scale());
        Conv2dOps.Gradients conv = Conv2dOps.backward(config.conv(), saved.input(), foldedWeight, f.bias(), g);
        INDArray dFoldedW = conv.weight();
        INDArray dFoldedB = conv.bias();
        INDArray dgamma = null;
        if (p.gamma() != null) {
            // sum_{i,kh,kw} dW' W per output channel, as one reduction without a weight-sized temporary.
            INDArray ds = Nd4j.getExecutioner().exec(new Dot(dFoldedW, p.weight(), 1, 2, 3))
                    .addi(p.biasOrZeros().sub(p.runningMean()).muli(dFoldedB));
            dgamma = ds.muli(inverseStd(config, p.runningVar()));
        }
        Nd4j.exec(new BroadcastMulOp(dFoldedW, f.scale(), dFoldedW, 0)); // now dW
        INDArray db = p.bias() == null ? null : dFoldedB.mul(f.scale());
        NativeMemory.release(foldedWeight, f.bias(), f.scale()); // this step's own fold
        return unfoldedGradients(new Conv2dOps.Gradients(conv.input(), dFoldedW, db), dgamma, dFoldedB, p);
    }

    // ---------------------------------------------------------------- DEPLOY

    /** {@code Z = conv(X, W') + b'} with the folded tensors as the parameters. */
    static Forward deploy(ConvConfig conv, FoldedParameters folded, INDArray x) {
        return new Forward(Conv2dOps.forward(conv, x, folded.weight(), folded.bias()), new SavedTensors.Deploy(x));
    }

    /** {@code dW' = conv_bp_weight(X, g)}, {@code db' = sum(g)}, {@code dX = conv_bp_data(g, W')}. */
    static BlockGradients deployBackward(ConvConfig conv, FoldedParameters folded, SavedTensors.Deploy saved,
                                         INDArray g) {
        Conv2dOps.Gradients c = Conv2dOps.backward(conv, saved.input(), folded.weight(), folded.bias(), g);
        Map<String, INDArray> grads = new LinkedHashMap<>();
        grads.put(ParameterNames.FOLDED_WEIGHT, c.weight());
        grads.put(ParameterNames.FOLDED_BIAS, c.bias());
        return new BlockGradients(c.input(), grads);
    }

    private static BlockGradients unfoldedGradients(Conv2dOps.Gradients conv, INDArray dgamma, INDArray dbeta,
                                                    ConvBNParameters p) {
        Map<String, INDArray> grads = new LinkedHashMap<>();
        grads.put(ParameterNames.CONV_WEIGHT, conv.weight());
        if (p.bias() != null) {
            grads.put(ParameterNames.CONV_BIAS, conv.bias());
        }
        if (p.gamma() != null) {
            grads.put(ParameterNames.BN_WEIGHT, dgamma);
            grads.put(ParameterNames.BN_BIAS, dbeta);
        }
        return new BlockGradients(conv.input(), grads);
    }
}
