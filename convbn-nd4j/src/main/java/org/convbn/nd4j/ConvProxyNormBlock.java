package org.convbn.nd4j;

import net.jcip.annotations.NotThreadSafe;

import org.convbn.nd4j.kernel.Arena;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.convbn.core.ConvConfig;
import org.convbn.core.proxy.Activation;
import org.convbn.core.proxy.GaussianQuantiles;
import org.convbn.core.proxy.ProxyMoments;
import org.convbn.core.proxy.ProxyNormConfig;
import org.convbn.nd4j.kernel.Kernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastMulOp;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastSubOp;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * A Conv2d followed by the batch-independent normalisation of {@link ProxyNormConfig}: GroupNorm without affine,
 * then a proxy-normalised activation. No statistic depends on the batch, so TRAIN, EVAL and TUNE compute the same
 * function and there is no mode to set; for inference the PN output affine folds into the next conv
 * ({@link #foldIntoNextConv}), exactly for a 1x1 next conv.
 *
 * <p>Shapes (NCHW): input {@code [N, C, H, W]}, output {@code [N, O, oH, oW]} (see {@link ConvConfig}); weight
 * {@code [O, C/groups, kH, kW]}; gamma, beta, betaTilde, gammaTilde {@code [O]}.
 *
 * <p>Per sample n and group g (channels {@code g O/G .. (g+1) O/G - 1}, all positions), with v = conv(X):
 * {@code y = (v - mean_ng) rstd_ng}, {@code rstd = 1/sqrt(var_ng + eps_gn)} (biased variance);
 * {@code a = gamma y + beta}, {@code h = phi(a)}, {@code z = (h - mu) r}, {@code r = 1/sqrt(sigma2 + eps_pn)}
 * with mu, sigma2 the proxy moments ({@link ProxyMoments}). Backward, per channel with g = dL/dz and sums over
 * N, H, W: {@code dmu = -r sum(g)}, {@code dsigma2 = -r^3/2 sum(g (h - mu))}, which reach the four parameters
 * through the proxy; directly {@code da = r g phi'(a)}, {@code dgamma += sum(da y)}, {@code dbeta += sum(da)},
 * {@code dy = gamma da}; GroupNorm {@code dv = rstd (dy - mean_ng(dy) - y mean_ng(dy y))}; then the conv backward.
 *
 * <p>Ownership as {@link ConvBNBlock}: forward keeps X (not modified) and y until the backward; parameters are the
 * live arrays of {@link ProxyNormParameters}. Not thread-safe.
 */
@NotThreadSafe
public final class ConvProxyNormBlock {
    private final ConvConfig conv;
    private final ProxyNormConfig norm;
    private final ProxyNormParameters parameters;
    private final double[] quantiles;
    private final DataType dataType;
    /** Saved by the forward: X, y, rstd [N, G]. */
    private INDArray savedInput;
    private INDArray savedNormalized;
    private INDArray savedRstd;

    /**
     * @param conv the convolution (its outChannels are the normalised channels)
     * @param norm the normalisation, for {@code conv.outChannels()} channels
     * @param parameters the tensors, used as they are
     * @throws IllegalArgumentException naming a tensor or setting that does not fit
     */
    public ConvProxyNormBlock(ConvConfig conv, ProxyNormConfig norm, ProxyNormParameters parameters) {
        if (norm.channels() != conv.outChannels()) {
            throw new IllegalArgumentException("norm.channels: expected conv.outChannels=" + conv.outChannels()
                    + ", got " + norm.channels());
        }
        this.conv = conv;
        this.norm = norm;
        this.parameters = parameters;
        this.dataType = parameters.validate(conv);
        this.quantiles = GaussianQuantiles.of(norm.proxyPoints());
    }

    /** @return the convolution */
    public ConvConfig conv() {
        return conv;
    }

    /** @return the normalisation */
    public ProxyNormConfig norm() {
        return norm;
    }

    /** @return the live parameters */
    public ProxyNormParameters parameters() {
        return parameters;
    }

    /** @return mu and sigma2 of the proxy for the current parameters */
    public ProxyMoments proxyMoments() {
        return ProxyMoments.of(norm.activation(), quantiles, vec(parameters.gamma()), vec(parameters.beta()),
                vec(parameters.betaTilde()), vec(parameters.gammaTilde()));
    }

    /**
     * @param x {@code [N, C, H, W]} of the block's data type; not modified, kept until backward
     * @return a new array z
     */
    public INDArray forward(INDArray x) {
        INDArray h = forwardActivation(x);
        ProxyMoments m = proxyMoments();
        INDArray r = inverseStd(m);
        INDArray z = Tensors.channelAffine(h, r, arr(m.mean()).muli(r).negi());
        Arena.direct().release(h);
        return z;
    }

    /**
     * The forward up to {@code h = phi(gamma y + beta)}, without the proxy normalisation: what the block outputs
     * once its affine is folded into the next conv. Keeps what {@link #forward} keeps.
     */
    public INDArray forwardActivation(INDArray x) {
        checkInput(x);
        clearSaved();
        INDArray v = Conv2dOps.forward(conv, x, parameters.weight(), parameters.bias());
        long[] shape = v.shape();
        int groups = norm.groups();
        INDArray grouped = v.reshape('c', shape[0], groups, v.length() / shape[0] / groups);
        INDArray mean = grouped.mean(true, 2);
        INDArray rstd = Transforms.sqrt(grouped.var(false, 2).addi(norm.groupNormEps()), false).rdivi(1.0);
        INDArray y = Nd4j.createUninitialized(v.dataType(), grouped.shape());
        Nd4j.exec(new BroadcastSubOp(grouped, mean.reshape(shape[0], groups), y, 0, 1));
        Nd4j.exec(new BroadcastMulOp(y, rstd, y, 0, 1));
        Arena.direct().release(v, mean);
        y = y.reshape('c', shape);
        savedInput = x;
        savedNormalized = y;
        savedRstd = rstd;
        INDArray a = Tensors.channelAffine(y, parameters.gamma(), parameters.beta());
        INDArray h = phi(a);
        Arena.direct().release(a);
        return h;
    }

    /**
     * Runs the backward of the last forward and releases what it saved.
     *
     * @param gradOutput dL/dz, not modified
     * @return dL/dX and the gradient of every parameter by name (conv.weight, conv.bias, pn.gamma, pn.beta,
     *         pn.beta_tilde, pn.gamma_tilde), new arrays
     * @throws IllegalStateException without a pending forward
     */
    public BlockGradients backward(INDArray gradOutput) {
        if (savedNormalized == null) {
            throw new IllegalStateException("backward: expected a pending forward, got none");
        }
        Tensors.requireShape("gradOutput", gradOutput, savedNormalized.shape());
        Tensors.requireType("gradOutput", gradOutput, dataType);
        INDArray y = savedNormalized;
        ProxyMoments m = proxyMoments();
        INDArray r = inverseStd(m);
        double[] rv = vec(r);
        INDArray a = Tensors.channelAffine(y, parameters.gamma(), parameters.beta());
        INDArray hMinusMu = phi(a);
        Nd4j.exec(new BroadcastSubOp(hMinusMu, arr(m.mean()), hMinusMu, 1));
        double[] sumG = vec(Tensors.channelSums(gradOutput));
        double[] sumGh = vec(Tensors.channelSums(hMinusMu.muli(gradOutput)));
        Arena.direct().release(hMinusMu);
        int c = rv.length;
        double[] dMean = new double[c];
        double[] dVar = new double[c];
        for (int ch = 0; ch < c; ch++) {
            dMean[ch] = -rv[ch] * sumG[ch];
            dVar[ch] = -0.5 * rv[ch] * rv[ch] * rv[ch] * sumGh[ch];
        }
        double[][] proxy = m.backward(norm.activation(), quantiles, vec(parameters.gamma()), vec(parameters.beta()),
                vec(parameters.betaTilde()), vec(parameters.gammaTilde()), dMean, dVar);

        // Direct path: da = r g phi'(a).
        INDArray da = phiDerivative(a);
        Arena.direct().release(a);
        da.muli(gradOutput);
        Nd4j.exec(new BroadcastMulOp(da, r, da, 1));
        INDArray dgamma = Tensors.channelSums(da.mul(y)).addi(arr(proxy[0]));
        INDArray dbeta = Tensors.channelSums(da).addi(arr(proxy[1]));
        Nd4j.exec(new BroadcastMulOp(da, parameters.gamma(), da, 1)); // now dy

        INDArray dv = groupNormBackward(da, y, savedRstd);
        Arena.direct().release(da, y);
        Kernels.ConvGradients g = Conv2dOps.backward(conv, savedInput, parameters.weight(), parameters.bias(), dv);
        Arena.direct().release(dv, savedRstd);
        clearSaved();
        Map<String, INDArray> grads = new LinkedHashMap<>();
        grads.put(ProxyNormParameters.WEIGHT, g.weight());
        if (parameters.bias() != null) {
            grads.put(ProxyNormParameters.BIAS, g.bias());
        }
        grads.put(ProxyNormParameters.GAMMA, dgamma);
        grads.put(ProxyNormParameters.BETA, dbeta);
        grads.put(ProxyNormParameters.BETA_TILDE, arr(proxy[2]));
        grads.put(ProxyNormParameters.GAMMA_TILDE, arr(proxy[3]));
        return new BlockGradients(g.input(), grads);
    }

    /** {@code dv = rstd (dy - mean(dy) - y mean(dy y))} per sample and group. */
    private INDArray groupNormBackward(INDArray dy, INDArray y, INDArray rstd) {
        long[] shape = dy.shape();
        int groups = norm.groups();
        long per = dy.length() / shape[0] / groups;
        INDArray dyG = dy.reshape('c', shape[0], groups, per);
        INDArray yG = y.reshape('c', shape[0], groups, per);
        INDArray meanDy = dyG.mean(2);
        INDArray meanDyY = dyG.mul(yG).mean(2);
        INDArray dv = Nd4j.createUninitialized(dy.dataType(), dyG.shape());
        Nd4j.exec(new BroadcastSubOp(dyG, meanDy, dv, 0, 1));
        INDArray yTerm = Nd4j.createUninitialized(dy.dataType(), dyG.shape());
        Nd4j.exec(new BroadcastMulOp(yG, meanDyY, yTerm, 0, 1));
        dv.subi(yTerm);
        Nd4j.exec(new BroadcastMulOp(dv, rstd.reshape(shape[0], groups), dv, 0, 1));
        Arena.direct().release(yTerm, meanDy, meanDyY);
        return dv.reshape('c', shape);
    }

    /**
     * @return what the last forward keeps for the backward: its input x (the caller's), the normalised conv output y
     *         {@code [N, C, H, W]} and the per-group inverse standard deviations {@code [N, groups, 1]}; empty when
     *         nothing is pending. Live arrays, not to be modified.
     */
    public List<INDArray> retainedActivations() {
        return savedNormalized == null ? List.of()
                : List.of(savedInput, savedNormalized, savedRstd);
    }

    /** Drops what the last forward saved. */
    public void clearSaved() {
        savedInput = null;
        savedNormalized = null;
        savedRstd = null;
    }

    /**
     * Folds this block's PN output affine {@code z = r h - r mu} into the 1x1 conv that follows it:
     * {@code W2'[o, c] = W2[o, c] r_c}, {@code b2'[o] = b2[o] - sum_c W2[o, c] r_c mu_c}, so that
     * {@code conv2(z) = conv2'(h)} with h from {@link #forwardActivation}. For a k x k next conv the same fold is exact
     * away from the zero-padded border (padding adds zeros to z, i.e. -r mu to h, which the fold does not see).
     *
     * @param next the next conv (groups 1; its inChannels are this block's channels)
     * @param weight W2 {@code [O2, O, kH, kW]}, not modified
     * @param bias b2 {@code [O2]} or null, not modified
     * @return new W2' and b2' (b2' present even without b2)
     * @throws IllegalArgumentException for a grouped next conv or mismatched shapes
     */
    public FoldedParameters foldIntoNextConv(ConvConfig next, INDArray weight, INDArray bias) {
        if (next.inChannels() != conv.outChannels() || next.groups() != 1) {
            throw new IllegalArgumentException("next: expected an ungrouped conv from " + conv.outChannels()
                    + " channels, got " + next.inChannels() + " channels in " + next.groups() + " groups");
        }
        Tensors.requireShape("weight", weight, next.weightShape());
        ProxyMoments m = proxyMoments();
        INDArray r = inverseStd(m);
        INDArray w2 = Nd4j.createUninitialized(weight.dataType(), weight.shape());
        Nd4j.exec(new BroadcastMulOp(weight, r, w2, 1));
        // sum over c, kh, kw of W2[o, c, kh, kw] r_c mu_c
        INDArray shift = w2.sum(2, 3).mmul(arr(m.mean()).reshape(m.mean().length, 1)).reshape(next.outChannels());
        INDArray b2 = bias == null ? shift.negi() : bias.sub(shift);
        return new FoldedParameters(w2, b2, r);
    }

    private INDArray inverseStd(ProxyMoments m) {
        double[] v = m.variance();
        double[] r = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            r[i] = 1 / Math.sqrt(v[i] + norm.proxyEps());
        }
        return arr(r);
    }

    private INDArray phi(INDArray a) {
        switch (norm.activation()) {
            case RELU:
                return Transforms.relu(a, true);
            case IDENTITY:
                return a.dup();
            default:
                return a.mul(Transforms.sigmoid(a, true));
        }
    }

    private INDArray phiDerivative(INDArray a) {
        if (norm.activation() == Activation.RELU) {
            return a.gt(0).castTo(a.dataType());
        }
        if (norm.activation() == Activation.IDENTITY) {
            return Nd4j.ones(a.dataType(), a.shape());
        }
        INDArray s = Transforms.sigmoid(a, true);
        // s (1 + a (1 - s))
        INDArray oneMinusS = s.rsub(1.0);
        return oneMinusS.muli(a).addi(1.0).muli(s);
    }

    private void checkInput(INDArray x) {
        if (x == null) {
            throw new IllegalArgumentException("x: expected an array [N, " + conv.inChannels() + ", H, W], got null");
        }
        conv.checkInputShape("x", x.shape());
        Tensors.requireType("x", x, dataType);
    }

    private INDArray arr(double[] v) {
        return Nd4j.createFromArray(v).castTo(dataType);
    }

    private static double[] vec(INDArray a) {
        return a.toDoubleVector();
    }
}
