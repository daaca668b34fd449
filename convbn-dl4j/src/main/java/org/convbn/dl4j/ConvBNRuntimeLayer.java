package org.convbn.dl4j;

import static org.convbn.dl4j.ConvBNParamInitializer.BETA_KEY;
import static org.convbn.dl4j.ConvBNParamInitializer.BIAS_KEY;
import static org.convbn.dl4j.ConvBNParamInitializer.GAMMA_KEY;
import static org.convbn.dl4j.ConvBNParamInitializer.MEAN_KEY;
import static org.convbn.dl4j.ConvBNParamInitializer.VAR_KEY;
import static org.convbn.dl4j.ConvBNParamInitializer.WEIGHT_KEY;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.Mode;
import org.convbn.core.ModeTransitions;
import org.convbn.core.ParameterNames;
import org.convbn.core.RetainedBytes;
import org.convbn.nd4j.BatchNormState;
import org.convbn.nd4j.BlockGradients;
import org.convbn.nd4j.ConvBNBlock;
import org.convbn.nd4j.ConvBNParameters;
import org.convbn.nd4j.FoldedParameters;
import org.convbn.nd4j.Folding;
import org.convbn.nd4j.NonFiniteTensorException;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.deeplearning4j.nn.api.MaskState;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.gradient.DefaultGradient;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.layers.BaseLayer;
import org.deeplearning4j.nn.workspace.ArrayType;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.deeplearning4j.util.ConvolutionUtils;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The runtime of a {@link ConvBNLayer}: a thin adapter that runs the library's {@link ConvBNBlock} over views of
 * the layer's parameters (so the updater's in-place steps are what the block sees), and hands the block's gradients
 * to DL4J's gradient views. The block and its kernels are made once and reused from forward to forward: the
 * parameters are validated (and in DEPLOY s computed and checked) when the block is made, which happens again only
 * when the mode changes or DL4J replaces a parameter view. The forward allocates in DL4J's activations workspace,
 * because what a mode keeps for the backward (Y in EVAL, the fold in TUNE) must live as long as the activations; the
 * backward
 * allocates outside workspaces (freeing its temporaries as it goes) and copies dL/dX into the activation-gradient
 * workspace.
 *
 * <p>TRAIN runs the block on copies of the running statistics; the backward reports {@code old - new} as their
 * gradient, which their NoOp updater subtracts: DL4J's own BatchNormalization scheme, so a fit step updates them
 * exactly once and a forward without a fit (a gradient check, an output) leaves them alone.
 */
@NotThreadSafe
public class ConvBNRuntimeLayer extends BaseLayer<ConvBNLayer> {
    private static final long serialVersionUID = 1L;

    private transient ConvBNConfig blockConfig;
    /** The kernels every block of this layer runs on, made with the first block. */
    private transient Kernels kernels;
    /** The block the forwards run, with what it was made for; null until the first forward or after a change. */
    private transient Runner runner;
    /** The block of the forward awaiting its backward; null when none. */
    private transient ConvBNBlock pending;

    /**
     * A block and what it was made over: the mode it runs (TRAIN outside training runs TUNE), the identity of the
     * parameter views, and what it owns (TRAIN's copies of the running statistics, DEPLOY's s).
     */
    private record Runner(
            ConvBNBlock block, Mode mode, List<INDArray> views, INDArray mean, INDArray variance, INDArray scale) {
        boolean fits(Mode m, List<INDArray> v) {
            if (m != mode || v.size() != views.size()) {
                return false;
            }
            for (int i = 0; i < v.size(); i++) {
                if (v.get(i) != views.get(i)) {
                    return false;
                }
            }
            return true;
        }

        void close() {
            block.clearSaved();
            Arena.direct().release(mean, variance, scale);
        }
    }

    public ConvBNRuntimeLayer(NeuralNetConfiguration conf, DataType dataType) {
        super(conf, dataType);
    }

    /** For DL4J's reflective {@code clone()}. */
    public ConvBNRuntimeLayer(NeuralNetConfiguration conf) {
        this(conf, conf.getDataType());
    }

    @Override
    public Type type() {
        return layerConf().getKind() == ConvBNLayer.Kind.LINEAR ? Type.FEED_FORWARD : Type.CONVOLUTIONAL;
    }

    @Override
    public boolean isPretrainLayer() {
        return false;
    }

    @Override
    public boolean hasBias() {
        return layerConf().hasBias();
    }

    /** @return the mode this layer runs in */
    public Mode mode() {
        return layerConf().getMode();
    }

    /** @return the library's configuration of this layer's block */
    public ConvBNConfig blockConfig() {
        if (blockConfig == null) {
            blockConfig = layerConf().toConvBNConfig();
        }
        return blockConfig;
    }

    /**
     * Switches mode in place: into DEPLOY the fold overwrites W with W' and b (or beta without a conv bias) with b';
     * out of DEPLOY the unfold restores them. The function the layer computes is unchanged by the switch.
     * Drops a pending forward. The updater's state of W and b (momentum, Adam moments) is not transformed.
     *
     * @param target the new mode
     * @throws org.convbn.core.IllegalModeTransitionException never for this layer (it always keeps the BN tensors)
     * @throws IllegalArgumentException into DEPLOY with neither conv bias nor affine BN (no slot for b'), or for
     *                                  parameters holding NaN, infinity or a negative running variance (named)
     * @throws IllegalStateException out of DEPLOY with a zero gamma (the fold cannot be inverted)
     */
    public void setMode(Mode target) {
        try {
            switchMode(target);
        } catch (NonFiniteTensorException e) {
            throw named(e);
        }
    }

    /**
     * @return the same problem naming this layer and its DL4J parameter, e.g. {@code layer "res4a_branch2b"
     *         parameter W (conv.weight)}
     */
    private NonFiniteTensorException named(NonFiniteTensorException e) {
        String t = e.tensor();
        String key = t.equals(ParameterNames.FOLDED_WEIGHT)
                ? WEIGHT_KEY
                : t.equals(ParameterNames.FOLDED_BIAS)
                        ? foldedBiasKey()
                        : ConvBNParamInitializer.ALL_KEYS.stream()
                                .filter(k -> t.equals(blockName(k)))
                                .findFirst()
                                .orElse(null);
        return e.named("layer \"" + layerConf().getLayerName() + "\" "
                + (key == null ? t : "parameter " + key + " (" + t + ")"));
    }

    /** @return the block's name for the tensor a DL4J parameter holds outside DEPLOY, e.g. conv.weight for W */
    private String blockName(String key) {
        return switch (key) {
            case WEIGHT_KEY -> blockConfig().producer().weightName();
            case BIAS_KEY -> blockConfig().producer().biasName();
            case GAMMA_KEY -> ParameterNames.BN_WEIGHT;
            case BETA_KEY -> ParameterNames.BN_BIAS;
            case MEAN_KEY -> ParameterNames.BN_RUNNING_MEAN;
            case VAR_KEY -> ParameterNames.BN_RUNNING_VAR;
            default -> throw new IllegalStateException("unknown parameter " + key);
        };
    }

    /** @return the DL4J parameter that holds the folded bias b' in DEPLOY: the conv bias, else BN's shift */
    private String foldedBiasKey() {
        return hasBias() ? BIAS_KEY : BETA_KEY;
    }

    private void switchMode(Mode target) {
        Mode current = mode();
        ModeTransitions.check(current, target, true);
        clearPending();
        dropRunner();
        if (current != Mode.DEPLOY && target == Mode.DEPLOY) {
            INDArray biasSlot = foldedBiasSlot(target);
            FoldedParameters f;
            try (MemoryWorkspace ws = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
                f = Folding.fold(blockConfig(), unfoldedViews());
            }
            getParam(WEIGHT_KEY).assign(f.weight());
            biasSlot.assign(f.bias());
            Arena.direct().release(f.weight(), f.bias(), f.scale());
        } else if (current == Mode.DEPLOY && target != Mode.DEPLOY) {
            INDArray biasSlot = foldedBiasSlot(current);
            BatchNormState kept =
                    new BatchNormState(getParam(GAMMA_KEY), getParam(BETA_KEY), getParam(MEAN_KEY), getParam(VAR_KEY));
            ConvBNParameters u;
            try (MemoryWorkspace ws = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
                u = Folding.unfold(blockConfig(), new FoldedParameters(getParam(WEIGHT_KEY), biasSlot, null), kept);
            }
            getParam(WEIGHT_KEY).assign(u.weight());
            if (hasBias()) {
                getParam(BIAS_KEY).assign(u.bias());
            } else {
                getParam(BETA_KEY).assign(u.beta());
            }
        }
        layerConf().setModeField(target);
    }

    /** The slot that holds b' in DEPLOY: the conv bias, else BN's shift. */
    private INDArray foldedBiasSlot(Mode deploy) {
        if (hasBias()) {
            return getParam(BIAS_KEY);
        }
        if (layerConf().isAffine()) {
            return getParam(BETA_KEY);
        }
        throw new IllegalArgumentException("mode: " + deploy + " needs a conv bias or an affine BN to hold the folded "
                + "bias in layer \"" + layerConf().getLayerName() + "\", got neither");
    }

    // ---------------------------------------------------------------- forward and backward

    @Override
    public INDArray activate(boolean training, LayerWorkspaceMgr workspaceMgr) {
        assertInputSet(false);
        applyDropOutIfNecessary(training, workspaceMgr);
        boolean linear = layerConf().getKind() == ConvBNLayer.Kind.LINEAR;
        if (input.rank() != (linear ? 2 : 4)) {
            throw new IllegalArgumentException("input: expected "
                    + (linear
                            ? "rank 2 [N, " + layerConf().getNIn() + "]"
                            : "rank 4 [N, " + layerConf().getNIn() + ", H, W] (NCHW)")
                    + " for layer \""
                    + layerConf().getLayerName() + "\", got shape " + Arrays.toString(input.shape()) + " " + layerId());
        }
        clearPending();
        ConvBNBlock block = block(training);
        // The output and what the block keeps for its backward (Y, the fold, batch statistics) go to the
        // activations workspace, which DL4J keeps until the backward is done, like the input the block also keeps.
        try (MemoryWorkspace ws = borrow(workspaceMgr, ArrayType.ACTIVATIONS)) {
            INDArray x = input.dataType() == dataType ? input : input.castTo(dataType);
            if (runner.mean() != null) {
                runner.mean().assign(getParam(MEAN_KEY));
                runner.variance().assign(getParam(VAR_KEY));
            }
            INDArray z;
            try {
                z = block.forward(x);
            } catch (NonFiniteTensorException e) {
                throw named(e);
            }
            pending = block; // only once the forward succeeded
            return z;
        }
    }

    private static MemoryWorkspace borrow(LayerWorkspaceMgr workspaceMgr, ArrayType type) {
        return workspaceMgr.isScopedOut(type)
                ? Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()
                : workspaceMgr.notifyScopeBorrowed(type);
    }

    /**
     * The block for this forward: the last one while the mode and the parameter views are those it was made for,
     * else a new one (outside workspaces: it lives across iterations). Outside training a TRAIN layer normalises
     * with its running statistics: TUNE computes exactly that.
     */
    private ConvBNBlock block(boolean training) {
        Mode mode = mode();
        Mode runs = mode == Mode.TRAIN && !training ? Mode.TUNE : mode;
        List<INDArray> views = Arrays.asList(
                getParam(WEIGHT_KEY),
                getParam(BIAS_KEY),
                getParam(GAMMA_KEY),
                getParam(BETA_KEY),
                getParam(MEAN_KEY),
                getParam(VAR_KEY));
        if (runner != null && runner.fits(runs, views)) {
            return runner.block();
        }
        dropRunner();
        ConvBNConfig config = blockConfig();
        try (MemoryWorkspace ws = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            if (kernels == null) {
                kernels = Kernels.create(dataType, Arena.direct());
            }
            if (runs == Mode.DEPLOY) {
                INDArray s = Folding.scale(config, unfoldedViews());
                ConvBNBlock b = ConvBNBlock.deployed(
                        config, new FoldedParameters(getParam(WEIGHT_KEY), foldedBiasSlot(mode), s), kernels);
                runner = new Runner(b, runs, views, null, null, s);
            } else if (runs == Mode.TRAIN) {
                INDArray mean = getParam(MEAN_KEY).dup();
                INDArray variance = getParam(VAR_KEY).dup();
                ConvBNParameters p = ConvBNParameters.of(
                        getParam(WEIGHT_KEY),
                        getParam(BIAS_KEY),
                        getParam(GAMMA_KEY),
                        getParam(BETA_KEY),
                        mean,
                        variance);
                runner = new Runner(ConvBNBlock.of(config, p, Mode.TRAIN, kernels), runs, views, mean, variance, null);
            } else {
                runner = new Runner(
                        ConvBNBlock.of(config, unfoldedViews(), runs, kernels), runs, views, null, null, null);
            }
        }
        return runner.block();
    }

    /** @return the block the forwards run now, or null before the first forward and after a change (for tests) */
    ConvBNBlock currentBlock() {
        return runner == null ? null : runner.block();
    }

    private void dropRunner() {
        if (runner != null) {
            if (pending == runner.block()) {
                pending = null;
            }
            runner.close();
            runner = null;
        }
    }

    private ConvBNParameters unfoldedViews() {
        return ConvBNParameters.of(
                getParam(WEIGHT_KEY),
                getParam(BIAS_KEY),
                getParam(GAMMA_KEY),
                getParam(BETA_KEY),
                getParam(MEAN_KEY),
                getParam(VAR_KEY));
    }

    @Override
    public Pair<Gradient, INDArray> backpropGradient(INDArray epsilon, LayerWorkspaceMgr workspaceMgr) {
        assertInputSet(true);
        if (pending == null) {
            throw new IllegalStateException("backpropGradient: expected a forward awaiting its backward in layer \""
                    + layerConf().getLayerName() + "\", got none " + layerId());
        }
        ConvBNBlock block = pending;
        pending = null;
        BlockGradients g;
        try (MemoryWorkspace ws = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            g = block.backward(epsilon.dataType() == dataType ? epsilon : epsilon.castTo(dataType));
        }
        // A TRAIN block is the runner's: its forward updated the runner's copies of the running statistics.
        Mode ran = block.mode();
        Gradient ret = new DefaultGradient(gradientsFlattened);
        for (String key : params.keySet()) {
            INDArray view = gradientViews.get(key);
            INDArray value = gradientFor(key, ran, g);
            if (value == null) {
                view.assign(0);
            } else {
                view.assign(value);
            }
            ret.gradientForVariable().put(key, view);
        }
        g.parameters().values().forEach(a -> Arena.direct().release(a));
        INDArray dx = g.input();
        if (!workspaceMgr.isScopedOut(ArrayType.ACTIVATION_GRAD)) {
            // The backward's temporaries were freed as it went; dL/dX moves to where DL4J expects it.
            dx = workspaceMgr.dup(ArrayType.ACTIVATION_GRAD, g.input());
            Arena.direct().release(g.input());
        }
        return new Pair<>(ret, dx);
    }

    /** The gradient of one DL4J parameter, or null for zero, from the backward of a block that ran in {@code ran}. */
    private INDArray gradientFor(String key, Mode ran, BlockGradients g) {
        if (ran == Mode.DEPLOY) {
            if (key.equals(WEIGHT_KEY)) {
                return g.parameter(ParameterNames.FOLDED_WEIGHT);
            }
            return key.equals(foldedBiasKey()) ? g.parameter(ParameterNames.FOLDED_BIAS) : null;
        }
        return switch (key) {
            case WEIGHT_KEY, BIAS_KEY -> g.parameter(blockName(key));
            case GAMMA_KEY, BETA_KEY -> layerConf().isNormFrozen() ? null : g.parameter(blockName(key));
            // old - new: the NoOp updater subtracts it, which leaves the running statistics at the new values.
            case MEAN_KEY -> ran == Mode.TRAIN ? getParam(MEAN_KEY).sub(runner.mean()) : null;
            case VAR_KEY -> ran == Mode.TRAIN ? getParam(VAR_KEY).sub(runner.variance()) : null;
            default -> throw new IllegalStateException("unknown parameter " + key);
        };
    }

    /**
     * @return the exact bytes the pending forward holds for its backward (its input among them), or
     *         {@link RetainedBytes#NONE}
     */
    public RetainedBytes retainedBytes() {
        return pending == null ? RetainedBytes.NONE : pending.retainedBytes();
    }

    private void clearPending() {
        if (pending != null) {
            pending.clearSaved();
            pending = null;
        }
    }

    @Override
    public void clear() {
        super.clear();
        clearPending();
    }

    @Override
    public void setParams(INDArray params) {
        // W is 'c' ordered; BaseLayer would flatten in 'f' order.
        setParams(params, 'c');
    }

    @Override
    public void setParamTable(Map<String, INDArray> paramTable) {
        clearPending();
        super.setParamTable(paramTable);
    }

    /** The running statistics' "gradients" are updates, not sums over the batch: DL4J must not average them. */
    @Override
    public boolean updaterDivideByMinibatch(String paramName) {
        return !MEAN_KEY.equals(paramName) && !VAR_KEY.equals(paramName);
    }

    @Override
    public void fit(INDArray input, LayerWorkspaceMgr workspaceMgr) {
        throw new UnsupportedOperationException("fit: a ConvBN layer is trained as part of a network, not alone");
    }

    @Override
    public Pair<INDArray, MaskState> feedForwardMaskArray(
            INDArray maskArray, MaskState currentMaskState, int minibatchSize) {
        if (maskArray == null || layerConf().getKind() == ConvBNLayer.Kind.LINEAR) {
            // Feed-forward masks are per example, as through DL4J's DenseLayer.
            return new Pair<>(maskArray, currentMaskState);
        }
        ConvBNLayer c = layerConf();
        if (c.getKind() == ConvBNLayer.Kind.CONV_TRANSPOSE2D) {
            throw new UnsupportedOperationException("masks: a transposed ConvBN layer takes no mask, got one of shape "
                    + Arrays.toString(maskArray.shape()) + " in layer \"" + c.getLayerName() + "\"");
        }
        INDArray outMask = ConvolutionUtils.cnn2dMaskReduction(
                maskArray, c.getKernelSize(), c.getStride(), c.getPadding(), c.getDilation(), c.getConvolutionMode());
        return new Pair<>(outMask, currentMaskState);
    }
}
