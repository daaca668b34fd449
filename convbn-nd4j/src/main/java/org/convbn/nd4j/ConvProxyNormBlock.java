package org.convbn.nd4j;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.ConvConfig;
import org.convbn.core.proxy.Activation;
import org.convbn.core.proxy.GaussianQuantiles;
import org.convbn.core.proxy.ProxyMoments;
import org.convbn.core.proxy.ProxyNormConfig;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.Layout;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastMulOp;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastSubOp;
import org.nd4j.linalg.api.ops.impl.reduce.floating.Mean;
import org.nd4j.linalg.api.ops.impl.scalar.ScalarAdd;
import org.nd4j.linalg.api.ops.impl.summarystats.Variance;
import org.nd4j.linalg.api.ops.impl.transforms.floating.RSqrt;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.AddOp;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.MulOp;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.SubOp;
import org.nd4j.linalg.factory.Nd4j;

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
 * <p>Computation runs on a {@link Kernels} set (a network passes its own; by default the fastest for the data type),
 * so the conv is the set's (oneDNN's for float32) and every feature map comes from its {@link Arena}. Outputs lie in
 * {@link #outputLayout()}: the set's preferred layout, with a channel block that divides a GroupNorm group, so that
 * each group of each sample is one contiguous run and the group statistics are plain reductions in either layout.
 *
 * <p>Ownership as {@link ConvBNBlock}: forward keeps X (not modified) and y until the backward; results are the
 * caller's, given back with {@code kernels().arena().release(...)}; parameters are the live arrays of
 * {@link ProxyNormParameters}. Not thread-safe.
 */
@NotThreadSafe
public final class ConvProxyNormBlock {
    private final ConvConfig conv;
    private final ProxyNormConfig norm;
    private final ProxyNormParameters parameters;
    private final double[] quantiles;
    private final DataType dataType;
    private final Kernels kernels;
    private final Arena arena;
    /** The layout of y and z: the kernels' preferred one, with a block that divides a GroupNorm group. */
    private final Layout layout;
    /** What the pending forward keeps for the backward, or null when none is pending. */
    private Saved saved;

    /**
     * What a forward keeps: its input (the caller's), the normalised conv output y in the block's layout and the
     * inverse standard deviations {@code [N, groups]} (both from the kernels' arena).
     */
    private record Saved(INDArray input, INDArray normalized, INDArray rstd) {}

    /**
     * A block on the fastest kernels for the parameters' data type, with {@link Arena#direct()} memory.
     *
     * @param conv the convolution (its outChannels are the normalised channels)
     * @param norm the normalisation, for {@code conv.outChannels()} channels
     * @param parameters the tensors, used as they are
     * @throws IllegalArgumentException naming a tensor or setting that does not fit
     */
    public ConvProxyNormBlock(ConvConfig conv, ProxyNormConfig norm, ProxyNormParameters parameters) {
        this(conv, norm, parameters, null);
    }

    /**
     * @param conv the convolution (its outChannels are the normalised channels)
     * @param norm the normalisation, for {@code conv.outChannels()} channels
     * @param parameters the tensors, used as they are
     * @param kernels what the block computes on, of the parameters' data type (a network's, so that its arena owns
     *                the block's outputs and temporaries); null for the fastest set on {@link Arena#direct()}
     * @throws IllegalArgumentException naming a tensor or setting that does not fit
     */
    public ConvProxyNormBlock(ConvConfig conv, ProxyNormConfig norm, ProxyNormParameters parameters, Kernels kernels) {
        if (norm.channels() != conv.outChannels()) {
            throw new IllegalArgumentException(
                    "norm.channels: expected conv.outChannels=" + conv.outChannels() + ", got " + norm.channels());
        }
        this.conv = conv;
        this.norm = norm;
        this.parameters = parameters;
        this.dataType = parameters.validate(conv);
        this.kernels = kernels != null ? kernels : Kernels.create(dataType, Arena.direct());
        if (this.kernels.dataType() != dataType) {
            throw new IllegalArgumentException(
                    "kernels: expected kernels for " + dataType + ", got " + this.kernels.dataType());
        }
        this.arena = this.kernels.arena();
        this.layout =
                Layout.largestFitting(this.kernels.preferredLayout(norm.channels()), norm.channels() / norm.groups());
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

    /** @return the kernels the block computes on (their arena owns its outputs) */
    public Kernels kernels() {
        return kernels;
    }

    /**
     * @return the layout of the block's outputs: the kernels' preferred layout for its channels, narrowed to a block
     *         that divides a GroupNorm group so that each group is a contiguous run of every sample
     */
    public Layout outputLayout() {
        return layout;
    }

    /** @return mu and sigma2 of the proxy for the current parameters */
    public ProxyMoments proxyMoments() {
        return ProxyMoments.of(
                norm.activation(),
                quantiles,
                vec(parameters.gamma()),
                vec(parameters.beta()),
                vec(parameters.betaTilde()),
                vec(parameters.gammaTilde()));
    }

    /**
     * @param x {@code [N, C, H, W]} of the block's data type, in any layout the kernels read; not modified, kept
     *          until backward
     * @return a new array z in {@link #outputLayout()}, from the kernels' arena
     */
    public INDArray forward(INDArray x) {
        INDArray h = forwardActivation(x);
        ProxyMoments m = proxyMoments();
        double[] r = inverseStd(m);
        double[] shift = new double[r.length];
        for (int c = 0; c < r.length; c++) {
            shift[c] = -r[c] * m.mean()[c];
        }
        INDArray scale = vector(r);
        INDArray offset = vector(shift);
        INDArray z = kernels.channelAffine(h, scale, offset);
        arena.release(h, scale, offset);
        return z;
    }

    /**
     * The forward up to {@code h = phi(gamma y + beta)}, without the proxy normalisation: what the block outputs
     * once its affine is folded into the next conv. Keeps what {@link #forward} keeps.
     *
     * @return a new array h in {@link #outputLayout()}, from the kernels' arena
     */
    public INDArray forwardActivation(INDArray x) {
        checkInput(x);
        clearSaved();
        INDArray v = kernels.conv(conv, x, parameters.weight(), null, parameters.bias(), layout);
        long n = x.size(0);
        INDArray grouped = byGroup(v);
        INDArray mean = arena.allocate(dataType, n, norm.groups());
        Nd4j.exec(new Mean(grouped, mean, 2));
        INDArray rstd = arena.allocate(dataType, n, norm.groups());
        Nd4j.exec(new Variance(grouped, rstd, false, 2));
        Nd4j.exec(new ScalarAdd(rstd, null, rstd, norm.groupNormEps()));
        Nd4j.exec(new RSqrt(rstd, rstd));
        INDArray y = arena.allocate(dataType, v.shape());
        INDArray yGrouped = byGroup(y);
        Nd4j.exec(new BroadcastSubOp(grouped, mean, yGrouped, 0, 1));
        Nd4j.exec(new BroadcastMulOp(yGrouped, rstd, yGrouped, 0, 1));
        arena.release(v, mean);
        saved = new Saved(x, y, rstd);
        INDArray a = kernels.channelAffine(y, parameters.gamma(), parameters.beta());
        INDArray h = phi(a);
        arena.release(a);
        return h;
    }

    /** {@link #backward(INDArray, boolean)} with dL/dX. */
    public BlockGradients backward(INDArray gradOutput) {
        return backward(gradOutput, true);
    }

    /**
     * Runs the backward of the last forward and releases what it saved.
     *
     * @param gradOutput dL/dz in {@link #outputLayout()}, not modified
     * @param inputGradient whether to compute dL/dX (a network's first layer needs none)
     * @return dL/dX in the input's layout (null when not asked for) and the gradient of every parameter by name
     *         (conv.weight, conv.bias, pn.gamma, pn.beta, pn.beta_tilde, pn.gamma_tilde), new arrays from the
     *         kernels' arena
     * @throws IllegalStateException without a pending forward
     */
    public BlockGradients backward(INDArray gradOutput, boolean inputGradient) {
        if (saved == null) {
            throw new IllegalStateException("backward: expected a pending forward, got none");
        }
        Saved s = saved;
        Tensors.requireShape("gradOutput", gradOutput, s.normalized().shape());
        Tensors.requireType("gradOutput", gradOutput, dataType);
        ProxyMoments m = proxyMoments();
        double[] r = inverseStd(m);
        INDArray a = kernels.channelAffine(s.normalized(), parameters.gamma(), parameters.beta());

        // Through the proxy: sum(g) and sum(g (h - mu)) = sum(g h) - mu sum(g) per channel.
        INDArray gh = phi(a);
        Nd4j.exec(new MulOp(gh, gradOutput, gh));
        double[] sumG = sums(gradOutput);
        double[] sumGh = sums(gh);
        arena.release(gh);
        int channels = r.length;
        double[] dMean = new double[channels];
        double[] dVar = new double[channels];
        for (int c = 0; c < channels; c++) {
            dMean[c] = -r[c] * sumG[c];
            dVar[c] = -0.5 * r[c] * r[c] * r[c] * (sumGh[c] - m.mean()[c] * sumG[c]);
        }
        double[][] proxy = m.backward(
                norm.activation(),
                quantiles,
                vec(parameters.gamma()),
                vec(parameters.beta()),
                vec(parameters.betaTilde()),
                vec(parameters.gammaTilde()),
                dMean,
                dVar);

        // Directly: da = r g phi'(a), dgamma += sum(da y), dbeta += sum(da), dy = gamma da.
        INDArray da = kernels.copy(gradOutput);
        switch (norm.activation()) {
            case SILU -> kernels.siluBackwardInPlace(a, da);
            case RELU -> kernels.reluBackwardInPlace(a, da); // relu(a) > 0 exactly where a > 0
            case IDENTITY -> {}
        }
        arena.release(a);
        INDArray rv = vector(r);
        kernels.channelScaleInPlace(da, rv);
        arena.release(rv);
        INDArray daY = arena.allocate(dataType, da.shape());
        Nd4j.exec(new MulOp(da, s.normalized(), daY));
        INDArray dgamma = plus(kernels.channelSums(daY), proxy[0]);
        arena.release(daY);
        INDArray dbeta = plus(kernels.channelSums(da), proxy[1]);
        kernels.channelScaleInPlace(da, parameters.gamma()); // now dy

        INDArray dv = groupNormBackward(da, s.normalized(), s.rstd());
        arena.release(da);
        Kernels.ConvGradients g = kernels.convBackward(
                conv,
                s.input(),
                parameters.weight(),
                null,
                dv,
                inputGradient,
                parameters.bias() != null,
                Layout.of(s.input()));
        arena.release(dv);
        clearSaved();
        Map<String, INDArray> grads = new LinkedHashMap<>();
        grads.put(ProxyNormParameters.WEIGHT, g.weight());
        if (parameters.bias() != null) {
            grads.put(ProxyNormParameters.BIAS, g.bias());
        }
        grads.put(ProxyNormParameters.GAMMA, dgamma);
        grads.put(ProxyNormParameters.BETA, dbeta);
        grads.put(ProxyNormParameters.BETA_TILDE, vector(proxy[2]));
        grads.put(ProxyNormParameters.GAMMA_TILDE, vector(proxy[3]));
        return new BlockGradients(g.input(), grads);
    }

    /** {@code dv = rstd (dy - mean(dy) - y mean(dy y))} per sample and group: a new array shaped like dy. */
    private INDArray groupNormBackward(INDArray dy, INDArray y, INDArray rstd) {
        long n = dy.size(0);
        INDArray dyG = byGroup(dy);
        INDArray yG = byGroup(y);
        INDArray meanDy = arena.allocate(dataType, n, norm.groups());
        Nd4j.exec(new Mean(dyG, meanDy, 2));
        INDArray dv = arena.allocate(dataType, dy.shape());
        INDArray dvG = byGroup(dv);
        Nd4j.exec(new MulOp(dyG, yG, dvG));
        INDArray meanDyY = arena.allocate(dataType, n, norm.groups());
        Nd4j.exec(new Mean(dvG, meanDyY, 2));
        Nd4j.exec(new BroadcastMulOp(yG, meanDyY, dvG, 0, 1));
        Nd4j.exec(new SubOp(dyG, dvG, dvG));
        Nd4j.exec(new BroadcastSubOp(dvG, meanDy, dvG, 0, 1));
        Nd4j.exec(new BroadcastMulOp(dvG, rstd, dvG, 0, 1));
        arena.release(meanDy, meanDyY);
        return dv;
    }

    /**
     * @return t viewed as {@code [N, groups, values per group]}: in the block's layout every group of channels is one
     *         contiguous run of each sample
     */
    private INDArray byGroup(INDArray t) {
        long n = t.size(0);
        return t.reshape('c', n, norm.groups(), t.length() / n / norm.groups());
    }

    /**
     * @return what the last forward keeps for the backward: its input x (the caller's), the normalised conv output y
     *         (logically {@code [N, C, H, W]}, in {@link #outputLayout()}) and the per-group inverse standard
     *         deviations {@code [N, groups]}; empty when nothing is pending. Live arrays, not to be modified.
     */
    public List<INDArray> retainedActivations() {
        return saved == null ? List.of() : List.of(saved.input(), saved.normalized(), saved.rstd());
    }

    /** Gives back what the last forward saved (not its input, which is the caller's). */
    public void clearSaved() {
        if (saved != null) {
            arena.release(saved.normalized(), saved.rstd());
            saved = null;
        }
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
        INDArray r = arr(inverseStd(m));
        INDArray w2 = Nd4j.createUninitialized(weight.dataType(), weight.shape());
        Nd4j.exec(new BroadcastMulOp(weight, r, w2, 1));
        // sum over c, kh, kw of W2[o, c, kh, kw] r_c mu_c
        INDArray shift =
                w2.sum(2, 3).mmul(arr(m.mean()).reshape(m.mean().length, 1)).reshape(next.outChannels());
        INDArray b2 = bias == null ? shift.negi() : bias.sub(shift);
        return new FoldedParameters(w2, b2, r);
    }

    /** @return {@code r = 1 / sqrt(sigma2 + eps_pn)} per channel */
    private double[] inverseStd(ProxyMoments m) {
        double[] v = m.variance();
        double[] r = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            r[i] = 1 / Math.sqrt(v[i] + norm.proxyEps());
        }
        return r;
    }

    /** @return {@code phi(a)}, a new array from the arena (a not modified) */
    private INDArray phi(INDArray a) {
        if (norm.activation() == Activation.SILU) {
            return kernels.silu(a);
        }
        INDArray h = kernels.copy(a);
        if (norm.activation() == Activation.RELU) {
            kernels.reluInPlace(h);
        }
        return h;
    }

    /** @return per-channel sums of a feature map in the block's layout */
    private double[] sums(INDArray t) {
        INDArray s = kernels.channelSums(t);
        double[] v = vec(s);
        arena.release(s);
        return v;
    }

    /** @return {@code t + v}, t modified (and returned) */
    private INDArray plus(INDArray t, double[] v) {
        INDArray a = vector(v);
        Nd4j.exec(new AddOp(t, a, t));
        arena.release(a);
        return t;
    }

    private void checkInput(INDArray x) {
        if (x == null) {
            throw new IllegalArgumentException("x: expected an array [N, " + conv.inChannels() + ", H, W], got null");
        }
        Layout in = Layout.ofOrNull(x);
        conv.checkInputShape("x", in != null && in.isBlocked() ? Layout.logicalShape(x) : x.shape());
        Tensors.requireType("x", x, dataType);
    }

    /** @return v as a new array of the block's data type from the arena */
    private INDArray vector(double[] v) {
        INDArray values = Nd4j.createFromArray(v);
        INDArray out = arena.allocate(dataType, v.length).assign(values);
        Arena.direct().release(values);
        return out;
    }

    /** @return v as a new array of the block's data type, the caller's (not the arena's) */
    private INDArray arr(double[] v) {
        return Nd4j.createFromArray(v).castTo(dataType);
    }

    private static double[] vec(INDArray a) {
        return a.toDoubleVector();
    }
}
