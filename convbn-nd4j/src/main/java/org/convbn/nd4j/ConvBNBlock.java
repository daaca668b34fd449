package org.convbn.nd4j;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.LinearConfig;
import org.convbn.core.Mode;
import org.convbn.core.ModeTransitions;
import org.convbn.core.ParameterNames;
import org.convbn.core.RetainedBytes;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.Layout;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Conv2d followed by a BatchNorm that runs in any of the four {@link Mode}s, on ND4J; or, by its
 * {@link org.convbn.core.ProducerConfig}, a ConvTranspose2d or a Linear followed by BatchNorm.
 *
 * <p>Shapes of a conv2d block (NCHW): input X {@code [N, C, H, W]}; output Z {@code [N, O, oH, oW]} with
 * {@code oH = floor((H + 2 pH - dH (kH - 1) - 1) / sH) + 1} for explicit padding and {@code ceil(H / sH)} for
 * "same" (likewise for W); weight {@code [O, C/groups, kH, kW]}; per-channel tensors {@code [O]}. A transposed conv
 * block: weight {@code [C, O/groups, kH, kW]}, {@code oH = (H - 1) sH - 2 pH + dH (kH - 1) + outputPadH + 1}
 * ({@link org.convbn.core.ConvTransposeConfig}). A linear block: input {@code [N, I]} or {@code [N, I, L]}, output
 * {@code [N, O]} or {@code [N, O, L]}, weight {@code [O, I]}, BN over N (and L), plain arrays only (no blocked
 * layout). The tensors are named as PyTorch names them ({@code conv.weight} / {@code linear.weight}, {@code bn.*}).
 * float32 and float64 are supported; every input must have the block's data type, except that on kernels keeping
 * feature maps in bfloat16 ({@link Kernels#precision()}, float32 parameters) x and dL/dZ may be bfloat16 and the
 * feature maps the block returns are.
 *
 * <p>Computation runs on a {@link Kernels} set (by default the fastest available for the data type, see
 * {@link Kernels#create}); a network passes its own so that all its blocks share one {@link Arena}, the owner of
 * their native memory. Outputs and gradients come from that arena and belong to the caller, who may give them back
 * with {@code block.kernels().arena().release(...)} (with the default {@link Arena#direct()} that frees them at
 * once; leaving them to the garbage collector also works there).
 *
 * <p>Ownership: {@link #forward} does not modify X but keeps a reference to it (and, per mode, to other
 * tensors: see {@link #retainedBytes()}) until the next {@link #backward} or {@link #clearSaved()}, so X must not
 * be modified in between; neither may the parameters. TRAIN's forward updates the running statistics in place.
 * {@link #backward} does not modify its argument, returns new arrays and closes the saved tensors.
 * {@link #parameters()} returns the live arrays, for an optimiser to update in place.
 *
 * <p>Modes switch at run time (see {@link ModeTransitions}): TRAIN, EVAL and TUNE share their parameters; any
 * mode switches to DEPLOY by folding once; DEPLOY switches back only when the config keeps the unfolded BN
 * tensors. A block is not thread-safe.
 */
@NotThreadSafe
public final class ConvBNBlock {
    private static final Logger LOG = LoggerFactory.getLogger(ConvBNBlock.class);
    private static final AtomicBoolean WARNED_IN_PROCESS = new AtomicBoolean();
    private final ConvBNConfig config;
    private final DataType dataType;
    private final Kernels kernels;
    private Mode mode;
    /** The tensors the block holds: unfolded in TRAIN, EVAL and TUNE, folded in DEPLOY. */
    private State state;

    private SavedTensors saved;
    /** The layout of the pending forward's output, which its backward's gradient must have. */
    private Layout savedOutputLayout;
    /** The pending forward's logical input shape (a linear block's {@code [N, F(, L)]}). */
    private long[] savedInputShape;
    /** The last TRAIN forward's batch mean and biased variance ([O] each, from the arena), for {@link #forwardReplay}. */
    private INDArray lastBatchMean;

    private INDArray lastBatchVar;
    private boolean warnedDeployTraining;

    /** What a block holds, one record per kind of state. */
    private sealed interface State permits Unfolded, Folded {}

    /** DEPLOY: W', b', s and the diagnostics of the fold made on entering it. */
    private sealed interface Folded extends State permits Deployed, DeployedUnfoldable {
        FoldedParameters folded();

        FoldDiagnostics diagnostics();
    }

    /** TRAIN, EVAL, TUNE: W, b, gamma, beta and the running statistics. */
    private record Unfolded(ConvBNParameters parameters) implements State {}

    /** DEPLOY without the BN tensors (it cannot unfold): W', b', s and the fold's diagnostics. */
    private record Deployed(FoldedParameters folded, FoldDiagnostics diagnostics) implements Folded {}

    /** DEPLOY with the BN tensors kept to unfold with (W and b are recovered from W', b'). */
    private record DeployedUnfoldable(FoldedParameters folded, FoldDiagnostics diagnostics, BatchNormState kept)
            implements Folded {}

    private ConvBNBlock(ConvBNConfig config, ConvBNParameters parameters, Mode mode, Kernels kernels) {
        this.config = config;
        this.dataType = parameters.validate(config);
        this.kernels = kernels(kernels, dataType);
        this.state = new Unfolded(parameters);
        this.mode = Mode.EVAL;
        setMode(mode);
    }

    private ConvBNBlock(ConvBNConfig config, FoldedParameters deployed, Kernels kernels) {
        this.config = config;
        Tensors.requireShape(
                ParameterNames.FOLDED_WEIGHT,
                deployed.weight(),
                config.producer().weightShape());
        this.dataType = deployed.weight().dataType();
        ConvBNParameters.requireFloatingType(dataType);
        Tensors.requireShape(ParameterNames.FOLDED_BIAS, deployed.bias(), config.channels());
        Tensors.requireType(ParameterNames.FOLDED_BIAS, deployed.bias(), dataType);
        Tensors.requireShape("scale", deployed.scale(), config.channels());
        this.kernels = kernels(kernels, dataType);
        this.state = new Deployed(deployed, FoldDiagnostics.of(deployed.scale()));
        this.mode = Mode.DEPLOY;
    }

    private static Kernels kernels(Kernels given, DataType type) {
        if (given == null) {
            return Kernels.create(type, Arena.direct());
        }
        if (given.dataType() != type) {
            throw new IllegalArgumentException("kernels: expected kernels for " + type + ", got " + given.dataType());
        }
        return given;
    }

    /**
     * A block in DEPLOY over folded tensors that live elsewhere (used as they are, not copied), for a framework
     * that keeps parameters in its own storage and folds them there with {@link Folding}. The block keeps no BN
     * tensors, so it cannot leave DEPLOY.
     *
     * @param config the configuration the tensors were folded for
     * @param folded W' {@code [O, C/groups, kH, kW]}, b' and s {@code [O]}, of one data type (FLOAT or DOUBLE)
     * @return the block, in DEPLOY, on the default kernels of its data type
     * @throws IllegalArgumentException naming the first tensor that does not fit
     */
    public static ConvBNBlock deployed(ConvBNConfig config, FoldedParameters folded) {
        return deployed(config, folded, null);
    }

    /**
     * As {@link #deployed(ConvBNConfig, FoldedParameters)} on the given kernels.
     *
     * @param kernels the kernels of the folded tensors' data type, or null for the default
     */
    public static ConvBNBlock deployed(ConvBNConfig config, FoldedParameters folded, Kernels kernels) {
        if (config == null) {
            throw new NullPointerException("config: expected a ConvBNConfig, got null");
        }
        if (folded == null) {
            throw new NullPointerException("folded: expected FoldedParameters, got null");
        }
        return new ConvBNBlock(config, folded, kernels);
    }

    /**
     * A block over the given parameters (used as they are, not copied), on the default kernels of their data type.
     *
     * @param config the configuration
     * @param parameters tensors shaped for {@code config}, all of one data type (FLOAT or DOUBLE)
     * @param mode the initial mode (DEPLOY folds at once)
     * @return the block
     * @throws IllegalArgumentException naming the first tensor that does not fit
     */
    public static ConvBNBlock of(ConvBNConfig config, ConvBNParameters parameters, Mode mode) {
        return of(config, parameters, mode, null);
    }

    /**
     * As {@link #of(ConvBNConfig, ConvBNParameters, Mode)} on the given kernels (a network's, to share its arena).
     *
     * @param kernels kernels of the parameters' data type, or null for the default
     * @throws IllegalArgumentException also when the kernels compute in another data type
     */
    public static ConvBNBlock of(ConvBNConfig config, ConvBNParameters parameters, Mode mode, Kernels kernels) {
        if (config == null) {
            throw new NullPointerException("config: expected a ConvBNConfig, got null");
        }
        if (parameters == null) {
            throw new NullPointerException("parameters: expected ConvBNParameters, got null");
        }
        return new ConvBNBlock(config, parameters, mode, kernels);
    }

    /**
     * A block with PyTorch's default initialisation (see {@link ConvBNParameters#initialize}).
     *
     * @return the block, in TRAIN mode
     */
    public static ConvBNBlock initialized(ConvBNConfig config, DataType dataType, long seed) {
        return of(config, ConvBNParameters.initialize(config, dataType, seed), Mode.TRAIN);
    }

    /** @return the configuration */
    public ConvBNConfig config() {
        return config;
    }

    /** @return the data type of the block's parameters and their gradients (and of its feature maps in full precision) */
    public DataType dataType() {
        return dataType;
    }

    /** @return the kernels this block computes on, and through them the arena its outputs come from */
    public Kernels kernels() {
        return kernels;
    }

    /** @return the current mode */
    public Mode mode() {
        return mode;
    }

    /**
     * Switches mode. Drops any tensors saved by a forward that was not followed by a backward.
     *
     * @param target the new mode, not null
     * @throws org.convbn.core.IllegalModeTransitionException leaving DEPLOY without kept BN tensors
     * @throws IllegalArgumentException when folding parameters that hold NaN or infinity (named), or a negative
     *                                  running variance
     * @throws IllegalStateException when leaving DEPLOY is impossible for the values (a zero gamma)
     */
    public void setMode(Mode target) {
        ModeTransitions.check(mode, target, !(state instanceof Deployed));
        clearSaved();
        if (ModeTransitions.folds(mode, target)) {
            ConvBNParameters u = unfolded();
            Tensors.requireNonNegative(ParameterNames.BN_RUNNING_VAR, u.runningVar());
            FoldedParameters f = ModeFunctions.fold(Arena.direct(), config, u, true);
            FoldDiagnostics d = FoldDiagnostics.of(f.scale());
            // Keep only what unfolding needs: W and b are recovered from W', b' (and would go stale).
            state = config.keepUnfolded() ? new DeployedUnfoldable(f, d, u.batchNorm()) : new Deployed(f, d);
            warnedDeployTraining = false;
        } else if (ModeTransitions.unfolds(mode, target)) {
            DeployedUnfoldable d = (DeployedUnfoldable) state; // ModeTransitions.check refused plain Deployed
            state = new Unfolded(ModeFunctions.unfold(config, d.folded(), d.kept(), Folding.UNABSORBED_BIAS_TOLERANCE));
        }
        mode = target;
    }

    /**
     * Runs the forward pass in the current mode.
     *
     * @param x input {@code [N, C, H, W]} ({@code [N, I(, L)]} for a linear block) of the block's data type (or the
     *          same feature map in another {@link Layout} the kernels read); not modified, kept until backward
     * @return a new array Z {@code [N, O, oH, oW]} ({@code [N, O(, L)]}) in x's layout
     * @throws IllegalArgumentException for a wrong rank, channel count, data type, a spatial size too small for
     *                                  the kernel, (TRAIN) a single value per channel, or (TUNE) NaN or infinity
     *                                  in gamma, beta, b or the running statistics, found by the per-channel
     *                                  check of each fold (a non-finite W is scanned for when folding into DEPLOY)
     */
    public INDArray forward(INDArray x) {
        return forward(x, layoutOrNchw(x));
    }

    /** @return x's layout, or NCHW when x is none (the checks of the forward then name what is wrong) */
    private static Layout layoutOrNchw(INDArray x) {
        Layout l = Layout.ofOrNull(x);
        return l == null ? Layout.NCHW : l;
    }

    /**
     * As {@link #forward(INDArray)} with the output in the given layout (a network keeps its feature maps in the
     * kernels' {@link Kernels#preferredLayout}).
     *
     * @param out the layout of Z (a blocked layout needs a channel count its block divides)
     */
    public INDArray forward(INDArray x, Layout out) {
        long[] shape = checkInput(x, out);
        clearSaved();
        long[] o = config.producer().outputShape(shape);
        INDArray x4 = featureMap(x);
        ModeFunctions.Forward f =
                switch (mode) {
                    case TRAIN -> {
                        long perChannel = Arrays.stream(o).reduce(1, Math::multiplyExact) / o[1];
                        if (perChannel < 2) {
                            throw new IllegalArgumentException(
                                    "x: TRAIN needs more than one value per channel to compute batch "
                                            + "statistics, got output " + Arrays.toString(o));
                        }
                        ModeFunctions.Forward t = ModeFunctions.train(kernels, config, unfolded(), x4, out);
                        SavedTensors.Train s = (SavedTensors.Train) t.saved();
                        ModeFunctions.updateRunningStatistics(
                                config.bn(),
                                unfolded().runningMean(),
                                unfolded().runningVar(),
                                s.batchMean(),
                                s.batchVar(),
                                perChannel);
                        kernels.arena().release(lastBatchMean, lastBatchVar);
                        lastBatchMean = s.batchMean();
                        lastBatchVar = s.batchVar();
                        yield t;
                    }
                    case EVAL -> ModeFunctions.eval(kernels, config, unfolded(), x4, out);
                    case TUNE -> ModeFunctions.tune(kernels, config, unfolded(), x4, out);
                    case DEPLOY -> ModeFunctions.deploy(kernels, config.producer(), folded(), x4, out);
                };
        saved = f.saved();
        savedOutputLayout = out;
        savedInputShape = shape;
        return asShape(f.output(), o);
    }

    /** @return the logical input shape */
    private long[] checkInput(INDArray x, Layout out) {
        if (x == null) {
            throw new IllegalArgumentException("x: expected an array "
                    + (config.producer() instanceof LinearConfig
                            ? "[N, " + config.producer().inChannels() + "(, L)]"
                            : "[N, " + config.producer().inChannels() + ", H, W]")
                    + ", got null");
        }
        if (config.producer() instanceof LinearConfig && (out != Layout.NCHW || layoutOrNchw(x) != Layout.NCHW)) {
            throw new IllegalArgumentException("out: a linear block reads and writes plain [N, F(, L)] arrays; "
                    + "expected layout NCHW, got " + out + " (input " + layoutOrNchw(x) + ")");
        }
        // A blocked feature map is checked by its logical shape; anything else as it is (rank, channels, size).
        long[] shape = layoutOrNchw(x).isBlocked() ? Layout.logicalShape(x) : x.shape();
        config.producer().checkInputShape("x", shape);
        requireFeatureMapType("x", x);
        return shape;
    }

    /**
     * @throws IllegalArgumentException unless t has the block's data type, or is bfloat16 under kernels that keep
     *                                  feature maps in bfloat16
     */
    private void requireFeatureMapType(String name, INDArray t) {
        if (t.dataType() == DataType.BFLOAT16 && kernels.precision().isBf16()) {
            return;
        }
        Tensors.requireType(name, t, dataType);
    }

    /**
     * @return t as the rank-4 feature map the mode functions compute on: a linear block's {@code [N, F]} or
     *         {@code [N, F, L]} as {@code [N, F, 1, 1]} or {@code [N, F, L, 1]} (a view when t is contiguous), any
     *         other block's t itself
     */
    private INDArray featureMap(INDArray t) {
        if (!(config.producer() instanceof LinearConfig)) {
            return t;
        }
        return t.reshape('c', t.size(0), t.size(1), t.rank() == 3 ? t.size(2) : 1, 1);
    }

    /** @return a result of the mode functions in the block's shape (a view of it for a linear block) */
    private INDArray asShape(INDArray t, long[] shape) {
        return config.producer() instanceof LinearConfig ? t.reshape('c', shape) : t;
    }

    /**
     * Runs the forward again on an input equal to the last forward's, for a network that recomputes activations
     * instead of keeping them (a reversible stage). In TRAIN the batch statistics of the last TRAIN forward
     * normalise, and the running statistics are not updated a second time; in the other modes this is
     * {@link #forward}. Keeps what {@link #forward} keeps, for one {@link #backward}.
     *
     * @param x the input, equal (up to reconstruction error) to the last forward's; not modified, kept
     * @return a new array Z in x's layout
     * @throws IllegalStateException in TRAIN when no TRAIN forward ran before
     * @throws IllegalArgumentException as {@link #forward}
     */
    public INDArray forwardReplay(INDArray x) {
        return forwardReplay(x, layoutOrNchw(x));
    }

    /** As {@link #forwardReplay(INDArray)} with the output in the given layout. */
    public INDArray forwardReplay(INDArray x, Layout out) {
        if (mode != Mode.TRAIN) {
            return forward(x, out);
        }
        if (lastBatchMean == null) {
            throw new IllegalStateException(
                    "forwardReplay: expected an earlier TRAIN forward whose batch statistics " + "to reuse, got none");
        }
        long[] shape = checkInput(x, out);
        clearSaved();
        ModeFunctions.Forward f =
                ModeFunctions.trainReplay(kernels, config, unfolded(), featureMap(x), lastBatchMean, lastBatchVar, out);
        saved = f.saved();
        savedOutputLayout = out;
        savedInputShape = shape;
        return asShape(f.output(), config.producer().outputShape(shape));
    }

    /**
     * Runs the backward pass of the last forward and closes what it saved.
     *
     * @param gradOutput dL/dZ, shaped like the last forward's output (same layout), of the block's data type; not
     *                   modified
     * @return dL/dX (in the input's layout) and the gradient of every trainable tensor (see {@link #parameters()}),
     *         all new arrays
     * @throws IllegalStateException if no forward is pending (never run, already backpropagated, cleared, or the
     *                               mode changed since)
     * @throws IllegalArgumentException for a wrong shape or data type of {@code gradOutput}
     */
    public BlockGradients backward(INDArray gradOutput) {
        return backward(gradOutput, true);
    }

    /**
     * As {@link #backward(INDArray)}, computing dL/dX only when asked: the first block of a network needs none.
     *
     * @param inputGradient whether to compute dL/dX; without it {@link BlockGradients#input()} is null
     */
    public BlockGradients backward(INDArray gradOutput, boolean inputGradient) {
        if (saved == null) {
            throw new IllegalStateException("backward: expected a pending forward in mode " + mode + ", got none "
                    + "(call forward first; each forward allows one backward)");
        }
        long[] expected = savedOutputLayout.physicalShape(config.producer().outputShape(savedInputShape));
        Tensors.requireShape("gradOutput", gradOutput, expected);
        requireFeatureMapType("gradOutput", gradOutput);
        INDArray g = featureMap(gradOutput);
        BlockGradients grads;
        try (SavedTensors s = saved) {
            saved = null;
            // setMode() drops saved tensors, so they always come from a forward in the current mode.
            grads = switch (mode) {
                case TRAIN ->
                    ModeFunctions.trainBackward(kernels, config, unfolded(), (SavedTensors.Train) s, g, inputGradient);
                case EVAL ->
                    ModeFunctions.evalBackward(kernels, config, unfolded(), (SavedTensors.Eval) s, g, inputGradient);
                case TUNE -> ModeFunctions.tuneBackward(kernels, config, unfolded(), s, g, inputGradient);
                case DEPLOY -> {
                    warnOnceAboutDeployTraining();
                    yield ModeFunctions.deployBackward(
                            kernels, config.producer(), folded(), (SavedTensors.Deploy) s, g, inputGradient);
                }
            };
        }
        return grads.input() == null
                ? grads
                : new BlockGradients(asShape(grads.input(), savedInputShape), grads.parameters());
    }

    /**
     * Drops what the last forward saved (e.g. after an inference-only forward), giving back the tensors the block
     * made for it (Y, the TUNE fold); the input stays the caller's.
     */
    public void clearSaved() {
        if (saved != null) {
            saved.close();
            saved = null;
        }
    }

    /** @return the exact bytes held for backward right now ({@link RetainedBytes#NONE} when nothing is pending) */
    public RetainedBytes retainedBytes() {
        return saved == null ? RetainedBytes.NONE : saved.bytes();
    }

    /**
     * @return the activation-sized tensors held for backward right now (the input among them), for memory
     *         accounting across blocks that share tensors; empty when nothing is pending. Do not modify them.
     */
    public List<INDArray> retainedActivations() {
        return saved == null ? List.of() : saved.activations();
    }

    /**
     * @return the trainable tensors by name, live: W, b, gamma, beta (as configured) in TRAIN, EVAL and TUNE;
     *         W', b' in DEPLOY
     */
    public Map<String, INDArray> parameters() {
        return state instanceof Unfolded u ? u.parameters().trainable(config.producer()) : folded().trainable();
    }

    /**
     * @return the unfolded tensors, live
     * @throws IllegalStateException in DEPLOY, where W and b are not maintained
     */
    public ConvBNParameters unfoldedParameters() {
        if (mode == Mode.DEPLOY) {
            throw new IllegalStateException("unfoldedParameters: expected a mode other than DEPLOY, got DEPLOY; the "
                    + "folded tensors are the parameters there (see foldedParameters())");
        }
        return unfolded();
    }

    /**
     * @return gamma, beta and the running statistics, live: the unfolded ones in TRAIN, EVAL and TUNE, the ones
     *         kept to unfold with in DEPLOY; empty in a DEPLOY block made without them ({@link #deployed})
     */
    public Optional<BatchNormState> batchNormState() {
        if (state instanceof Unfolded u) {
            return Optional.of(u.parameters().batchNorm());
        }
        return state instanceof DeployedUnfoldable d ? Optional.of(d.kept()) : Optional.empty();
    }

    /**
     * @return W', b', s: live in DEPLOY; elsewhere a fold computed now from the current parameters
     */
    public FoldedParameters foldedParameters() {
        return state instanceof Unfolded u
                ? ModeFunctions.fold(Arena.direct(), config, u.parameters(), true)
                : folded();
    }

    /** @return the range of s; in DEPLOY the one computed when the block folded */
    public FoldDiagnostics foldDiagnostics() {
        if (!(state instanceof Unfolded u)) {
            return foldedState().diagnostics();
        }
        INDArray s = ModeFunctions.scale(
                Arena.direct(),
                config.bn(),
                u.parameters().gamma(),
                u.parameters().runningVar());
        FoldDiagnostics d = FoldDiagnostics.of(s);
        Arena.direct().release(s);
        return d;
    }

    /** @return W, b, gamma, beta and the running statistics (TRAIN, EVAL, TUNE) */
    private ConvBNParameters unfolded() {
        if (state instanceof Unfolded u) {
            return u.parameters();
        }
        throw new IllegalStateException("expected the unfolded tensors, but the block is in " + mode);
    }

    /** @return W', b', s and the fold's diagnostics (DEPLOY) */
    private Folded foldedState() {
        if (state instanceof Folded f) {
            return f;
        }
        throw new IllegalStateException("expected the folded tensors, but the block is in " + mode);
    }

    private FoldedParameters folded() {
        return foldedState().folded();
    }

    /**
     * Warns the first time a block of this process trains in DEPLOY with a wide spread of s; later blocks log at
     * debug level, so a network of 50 blocks says it once.
     */
    private void warnOnceAboutDeployTraining() {
        if (warnedDeployTraining) {
            return;
        }
        warnedDeployTraining = true;
        foldedState()
                .diagnostics()
                .deployTrainingWarning(FoldDiagnostics.DEFAULT_SPREAD_LIMIT)
                .ifPresent(w -> {
                    if (WARNED_IN_PROCESS.compareAndSet(false, true)) {
                        LOG.warn(
                                "{} block {}: {} (further blocks are logged at debug level)",
                                Mode.DEPLOY,
                                config.producer(),
                                w);
                    } else {
                        LOG.debug("{} block {}: {}", Mode.DEPLOY, config.producer(), w);
                    }
                });
    }
}
