package org.convbn.dl4j;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.BatchNormConfig;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.convbn.core.ConvTransposeConfig;
import org.convbn.core.LinearConfig;
import org.convbn.core.Mode;
import org.convbn.core.Padding;
import org.convbn.core.ProducerConfig;
import org.convbn.core.RetainedBytes;
import org.convbn.core.TuneFold;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.ParamInitializer;
import org.deeplearning4j.nn.conf.CNN2DFormat;
import org.deeplearning4j.nn.conf.ConvolutionMode;
import org.deeplearning4j.nn.conf.InputPreProcessor;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.FeedForwardLayer;
import org.deeplearning4j.nn.conf.layers.InputTypeUtil;
import org.deeplearning4j.nn.conf.layers.LayerValidation;
import org.deeplearning4j.nn.conf.memory.LayerMemoryReport;
import org.deeplearning4j.nn.conf.memory.MemoryReport;
import org.deeplearning4j.optimize.api.TrainingListener;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.activations.impl.ActivationIdentity;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.learning.config.NoOp;
import org.nd4j.linalg.learning.regularization.Regularization;
import org.nd4j.shade.jackson.annotation.JsonProperty;

/**
 * DL4J configuration of a ConvBN layer: a 2-D convolution (or, by its {@link Kind}, a transposed convolution or a
 * dense layer) followed by BatchNorm, run by the library's block in one of the four {@link Mode}s. It serialises to
 * JSON with the network like DL4J's own layers.
 *
 * <p>Shapes (NCHW only), {@link Kind#CONV2D}: input {@code [N, nIn, H, W]}, output {@code [N, nOut, oH, oW]} with
 * {@code oH = floor((H + 2 pH - dH (kH - 1) - 1) / sH) + 1} in {@link ConvolutionMode#Truncate} and
 * {@link ConvolutionMode#Strict}, {@code ceil(H / sH)} in {@link ConvolutionMode#Same} (likewise for W).
 * {@link Kind#CONV_TRANSPOSE2D} (DL4J's Deconvolution2D): {@code oH = (H - 1) sH - 2 pH + dH (kH - 1) + 1},
 * Truncate or Strict only. {@link Kind#LINEAR} (DL4J's DenseLayer): input {@code [N, nIn]}, output {@code [N, nOut]},
 * BN over the batch (DL4J's BatchNormalization on feed-forward activations).
 *
 * <p>Parameters, in the order of the flattened parameter vector ({@link ConvBNParamInitializer}):
 * <ul>
 *   <li>{@code W}: the producer's weight in PyTorch's layout, {@code [nOut, nIn, kH, kW]} for a conv,
 *       {@code [nIn, nOut, kH, kW]} for a transposed conv (DL4J's Deconvolution2D layout too), {@code [nOut, nIn]}
 *       for a dense layer (the transpose of DenseLayer's); its updater and regularisation are the layer's
 *       ({@code updater}, {@code l1}, {@code l2}, {@code weightDecay});</li>
 *   <li>{@code b} {@code [nOut]} when {@link #hasBias()}: the conv bias, with the bias updater and regularisation;</li>
 *   <li>{@code gamma}, {@code beta} {@code [nOut]} when {@link #isAffine()}: BN's scale and shift, with
 *       {@link #getNormUpdater()} (the layer's updater when null) and {@link #getNormRegularization()} (none by
 *       default, like DL4J's BatchNormalization); {@link #isNormFrozen()} fixes them (zero gradients; note that a
 *       {@link NoOp} updater would not: DL4J subtracts a NoOp's gradient as it is);</li>
 *   <li>{@code mean}, {@code var} {@code [nOut]}: the running statistics (the variance itself, not DL4J's
 *       log10 of the standard deviation), always with a {@link NoOp} updater: in TRAIN the backward hands the
 *       running update to the updater as {@code old - new}, DL4J's own scheme, so a step updates them once.</li>
 * </ul>
 *
 * <p>In DEPLOY the same slots hold the folded conv: {@code W} holds W' and {@code b} (or {@code beta} when the
 * conv has no bias) holds b', while gamma, the running statistics and the other slot keep what unfolding needs.
 * {@link ConvBNLayers#setMode} switches a network's layers between modes, folding and unfolding in place.
 *
 * <p>Outside training (DL4J's {@code training == false}) a TRAIN layer normalises with its running statistics,
 * like BatchNormalization; the other modes compute the same function whether training or not.
 */
@NotThreadSafe
public class ConvBNLayer extends FeedForwardLayer {
    private static final long serialVersionUID = 1L;

    /** The layer BN follows. */
    public enum Kind {
        /** A 2-D convolution (DL4J's ConvolutionLayer, PyTorch's Conv2d). */
        CONV2D,
        /** A 2-D transposed convolution (DL4J's Deconvolution2D, PyTorch's ConvTranspose2d). */
        CONV_TRANSPOSE2D,
        /** A fully connected layer (DL4J's DenseLayer, PyTorch's Linear). */
        LINEAR
    }

    @JsonProperty
    private Kind kind = Kind.CONV2D;

    @JsonProperty
    private int[] kernelSize = {3, 3};

    @JsonProperty
    private int[] stride = {1, 1};

    @JsonProperty
    private int[] padding = {0, 0};

    @JsonProperty
    private int[] dilation = {1, 1};

    @JsonProperty
    private ConvolutionMode convolutionMode = ConvolutionMode.Truncate;

    @JsonProperty
    private boolean hasBias = true;

    @JsonProperty
    private boolean affine = true;

    @JsonProperty
    private double eps = BatchNormConfig.DEFAULT_EPS;

    @JsonProperty
    private double momentum = BatchNormConfig.DEFAULT_MOMENTUM;

    @JsonProperty
    private boolean unbiasedRunningVar = true;

    @JsonProperty
    private Mode mode = Mode.TUNE;

    @JsonProperty
    private TuneFold tuneFold = TuneFold.RECOMPUTE;

    @JsonProperty
    private IUpdater normUpdater;

    @JsonProperty
    private List<Regularization> normRegularization = new ArrayList<>();

    @JsonProperty
    private boolean normFrozen;

    /** For JSON deserialisation. */
    protected ConvBNLayer() {}

    private ConvBNLayer(Builder b) {
        super(b);
        this.kind = b.kind;
        this.kernelSize = b.kernelSize.clone();
        this.stride = b.stride.clone();
        this.padding = b.padding.clone();
        this.dilation = b.dilation.clone();
        this.convolutionMode = b.convolutionMode;
        this.hasBias = b.hasBias;
        this.affine = b.affine;
        this.eps = b.eps;
        this.momentum = b.momentum;
        this.unbiasedRunningVar = b.unbiasedRunningVar;
        this.mode = b.mode;
        this.tuneFold = b.tuneFold;
        this.normUpdater = b.normUpdater;
        this.normRegularization = new ArrayList<>(b.normRegularization);
        this.normFrozen = b.normFrozen;
        initializeConstraints(b);
    }

    // ---------------------------------------------------------------- the block this layer runs

    /**
     * The library's block configuration for this layer; DEPLOY keeps the BN tensors, so every layer can leave it.
     *
     * @throws IllegalStateException if nIn or nOut is not set yet
     */
    public ConvBNConfig toConvBNConfig() {
        if (nIn <= 0 || nOut <= 0) {
            throw new IllegalStateException("layer \"" + getLayerName() + "\": expected nIn and nOut > 0, got nIn="
                    + nIn + ", nOut=" + nOut + " (set them, or give the network an input type)");
        }
        int in = Math.toIntExact(nIn);
        int out = Math.toIntExact(nOut);
        ProducerConfig producer =
                switch (kind) {
                    case CONV2D ->
                        ConvConfig.builder(in, out)
                                .kernel(kernelSize[0], kernelSize[1])
                                .stride(stride[0], stride[1])
                                .padding(
                                        convolutionMode == ConvolutionMode.Same
                                                ? Padding.same()
                                                : Padding.of(padding[0], padding[1]))
                                .dilation(dilation[0], dilation[1])
                                .bias(hasBias)
                                .build();
                    case CONV_TRANSPOSE2D ->
                        ConvTransposeConfig.builder(in, out)
                                .kernel(kernelSize[0], kernelSize[1])
                                .stride(stride[0], stride[1])
                                .padding(padding[0], padding[1])
                                .dilation(dilation[0], dilation[1])
                                .bias(hasBias)
                                .build();
                    case LINEAR -> new LinearConfig(in, out, hasBias);
                };
        BatchNormConfig bn = new BatchNormConfig(out, eps, momentum, affine, unbiasedRunningVar);
        return new ConvBNConfig(producer, bn, true, tuneFold);
    }

    // ---------------------------------------------------------------- DL4J's layer contract

    @Override
    public Layer instantiate(
            NeuralNetConfiguration conf,
            Collection<TrainingListener> trainingListeners,
            int layerIndex,
            INDArray layerParamsView,
            boolean initializeParams,
            DataType networkDataType) {
        LayerValidation.assertNInNOutSet("ConvBNLayer", getLayerName(), layerIndex, getNIn(), getNOut());
        ConvBNRuntimeLayer layer = new ConvBNRuntimeLayer(conf, networkDataType);
        layer.setListeners(trainingListeners);
        layer.setIndex(layerIndex);
        layer.setParamsViewArray(layerParamsView);
        Map<String, INDArray> params = initializer().init(conf, layerParamsView, initializeParams);
        layer.setParamTable(params);
        layer.setConf(conf);
        return layer;
    }

    @Override
    public ParamInitializer initializer() {
        return ConvBNParamInitializer.getInstance();
    }

    @Override
    public InputType getOutputType(int layerIndex, InputType inputType) {
        if (kind == Kind.LINEAR) {
            return super.getOutputType(layerIndex, inputType);
        }
        requireConvolutionalInput(inputType);
        if (kind == Kind.CONV_TRANSPOSE2D) {
            // DL4J sets nIn before it asks for the output type; the block's config computes the size (and names a
            // too-small input).
            InputType.InputTypeConvolutional in = (InputType.InputTypeConvolutional) inputType;
            long[] out = toConvBNConfig().producer().outputShape(new long[] {1, nIn, in.getHeight(), in.getWidth()});
            return InputType.convolutional(out[2], out[3], nOut, CNN2DFormat.NCHW);
        }
        return InputTypeUtil.getOutputTypeCnnLayers(
                inputType,
                kernelSize,
                stride,
                padding,
                dilation,
                convolutionMode,
                nOut,
                layerIndex,
                getLayerName(),
                CNN2DFormat.NCHW,
                ConvBNLayer.class);
    }

    @Override
    public void setNIn(InputType inputType, boolean override) {
        if (kind == Kind.LINEAR) {
            super.setNIn(inputType, override);
            return;
        }
        requireConvolutionalInput(inputType);
        if (nIn <= 0 || override) {
            nIn = ((InputType.InputTypeConvolutional) inputType).getChannels();
        }
    }

    @Override
    public InputPreProcessor getPreProcessorForInputType(InputType inputType) {
        if (inputType == null) {
            throw new IllegalStateException("layer \"" + getLayerName() + "\": expected an input type, got null");
        }
        return kind == Kind.LINEAR
                ? super.getPreProcessorForInputType(inputType)
                : InputTypeUtil.getPreProcessorForInputTypeCnnLayers(inputType, getLayerName());
    }

    private void requireConvolutionalInput(InputType inputType) {
        if (inputType == null || inputType.getType() != InputType.Type.CNN) {
            throw new IllegalStateException("layer \"" + getLayerName() + "\": expected a convolutional (CNN) input "
                    + "type, got " + inputType);
        }
        CNN2DFormat format = ((InputType.InputTypeConvolutional) inputType).getFormat();
        if (format != CNN2DFormat.NCHW) {
            throw new IllegalStateException("layer \"" + getLayerName() + "\": expected NCHW input, got " + format);
        }
    }

    @Override
    public IUpdater getUpdaterByParam(String paramName) {
        return switch (paramName) {
            case ConvBNParamInitializer.WEIGHT_KEY -> iUpdater;
            case ConvBNParamInitializer.BIAS_KEY -> biasUpdater != null ? biasUpdater : iUpdater;
            case ConvBNParamInitializer.GAMMA_KEY, ConvBNParamInitializer.BETA_KEY ->
                normFrozen ? new NoOp() : normUpdater != null ? normUpdater : iUpdater;
            case ConvBNParamInitializer.MEAN_KEY, ConvBNParamInitializer.VAR_KEY -> new NoOp();
            default ->
                throw new IllegalArgumentException("paramName: expected one of " + ConvBNParamInitializer.ALL_KEYS
                        + ", got \"" + paramName + "\"");
        };
    }

    @Override
    public List<Regularization> getRegularizationByParam(String paramName) {
        return switch (paramName) {
            case ConvBNParamInitializer.WEIGHT_KEY -> regularization;
            case ConvBNParamInitializer.BIAS_KEY -> regularizationBias;
            case ConvBNParamInitializer.GAMMA_KEY, ConvBNParamInitializer.BETA_KEY ->
                normFrozen ? null : normRegularization;
            default -> null;
        };
    }

    @Override
    public boolean isPretrainParam(String paramName) {
        return false;
    }

    @Override
    public LayerMemoryReport getMemoryReport(InputType inputType) {
        InputType out = getOutputType(-1, inputType);
        long paramSize = initializer().numParams(this);
        long updaterState = 0;
        for (String key : ConvBNParamInitializer.getInstance().paramKeys(this)) {
            updaterState += getUpdaterByParam(key).stateSize(ConvBNParamInitializer.paramLength(this, key));
        }
        long outPerExample = out.arrayElementsPerExample();
        // Held between forward and backward beyond the input (which the network keeps anyway), per example, as the
        // mode table in Mode says (RetainedBytes.predict computes it). Backward works on about two maps more.
        long[] oneExample = inputType instanceof InputType.InputTypeConvolutional in
                ? new long[] {1, in.getChannels(), in.getHeight(), in.getWidth()}
                : new long[] {1, nIn};
        long cachedPerExample =
                RetainedBytes.predict(toConvBNConfig(), mode, oneExample, 1).activationBytes()
                        - inputType.arrayElementsPerExample();
        return new LayerMemoryReport.Builder(getLayerName(), ConvBNLayer.class, inputType, out)
                .standardMemory(paramSize, updaterState)
                .workingMemory(0, outPerExample, 0, 2 * outPerExample + cachedPerExample)
                .cacheMemory(MemoryReport.CACHE_MODE_ALL_ZEROS, MemoryReport.CACHE_MODE_ALL_ZEROS)
                .build();
    }

    @Override
    public ConvBNLayer clone() {
        ConvBNLayer c = (ConvBNLayer) super.clone();
        c.kernelSize = kernelSize.clone();
        c.stride = stride.clone();
        c.padding = padding.clone();
        c.dilation = dilation.clone();
        c.normRegularization = new ArrayList<>(normRegularization.size());
        for (Regularization r : normRegularization) {
            c.normRegularization.add(r.clone());
        }
        if (normUpdater != null) {
            c.normUpdater = normUpdater.clone();
        }
        return c;
    }

    // ---------------------------------------------------------------- accessors

    /** @return the layer BN follows */
    public Kind getKind() {
        return kind;
    }

    /** @return {kH, kW}, a copy */
    public int[] getKernelSize() {
        return kernelSize.clone();
    }

    /** @return {sH, sW}, a copy */
    public int[] getStride() {
        return stride.clone();
    }

    /** @return {pH, pW} (ignored in Same mode), a copy */
    public int[] getPadding() {
        return padding.clone();
    }

    /** @return {dH, dW}, a copy */
    public int[] getDilation() {
        return dilation.clone();
    }

    public ConvolutionMode getConvolutionMode() {
        return convolutionMode;
    }

    /** @return whether the conv has a bias {@code b} */
    public boolean hasBias() {
        return hasBias;
    }

    /** @return whether BN has gamma and beta */
    public boolean isAffine() {
        return affine;
    }

    public double getEps() {
        return eps;
    }

    /** @return the weight of the batch statistic in the running update (PyTorch's momentum; DL4J's 1 - decay) */
    public double getMomentum() {
        return momentum;
    }

    /** @return whether the running variance is updated with the unbiased batch variance (PyTorch) or not (DL4J) */
    public boolean isUnbiasedRunningVar() {
        return unbiasedRunningVar;
    }

    /** @return the mode the layer runs in */
    public Mode getMode() {
        return mode;
    }

    /** Set by {@link ConvBNRuntimeLayer#setMode}, which also moves the parameters; not for direct use. */
    void setModeField(Mode newMode) {
        this.mode = newMode;
    }

    public TuneFold getTuneFold() {
        return tuneFold;
    }

    /** @return the updater of gamma and beta; null means the layer's updater */
    public IUpdater getNormUpdater() {
        return normUpdater;
    }

    /** @return whether gamma and beta are fixed (their gradients are reported as zero) */
    public boolean isNormFrozen() {
        return normFrozen;
    }

    /** @return the regularisation of gamma and beta (live list, empty by default) */
    public List<Regularization> getNormRegularization() {
        return normRegularization;
    }

    @Override
    public boolean equals(Object o) {
        if (this == o) {
            return true;
        }
        if (!(o instanceof ConvBNLayer other) || !super.equals(o)) {
            return false;
        }
        return kind == other.kind
                && Arrays.equals(kernelSize, other.kernelSize)
                && Arrays.equals(stride, other.stride)
                && Arrays.equals(padding, other.padding)
                && Arrays.equals(dilation, other.dilation)
                && convolutionMode == other.convolutionMode
                && hasBias == other.hasBias
                && affine == other.affine
                && Double.compare(eps, other.eps) == 0
                && Double.compare(momentum, other.momentum) == 0
                && unbiasedRunningVar == other.unbiasedRunningVar
                && mode == other.mode
                && tuneFold == other.tuneFold
                && Objects.equals(normUpdater, other.normUpdater)
                && Objects.equals(normRegularization, other.normRegularization)
                && normFrozen == other.normFrozen;
    }

    @Override
    public int hashCode() {
        return Objects.hash(
                super.hashCode(),
                kind,
                Arrays.hashCode(kernelSize),
                Arrays.hashCode(stride),
                Arrays.hashCode(padding),
                Arrays.hashCode(dilation),
                convolutionMode,
                hasBias,
                affine,
                eps,
                momentum,
                unbiasedRunningVar,
                mode,
                tuneFold,
                normUpdater,
                normRegularization,
                normFrozen);
    }

    // ---------------------------------------------------------------- builder

    /** Builds a {@link ConvBNLayer}; {@link #build()} validates every setting. */
    @NotThreadSafe
    public static final class Builder extends FeedForwardLayer.Builder<Builder> {
        private Kind kind = Kind.CONV2D;
        private int[] kernelSize = {3, 3};
        private int[] stride = {1, 1};
        private int[] padding = {0, 0};
        private int[] dilation = {1, 1};
        private ConvolutionMode convolutionMode = ConvolutionMode.Truncate;
        private boolean hasBias = true;
        private boolean affine = true;
        private double eps = BatchNormConfig.DEFAULT_EPS;
        private double momentum = BatchNormConfig.DEFAULT_MOMENTUM;
        private boolean unbiasedRunningVar = true;
        private Mode mode = Mode.TUNE;
        private TuneFold tuneFold = TuneFold.RECOMPUTE;
        private IUpdater normUpdater;
        private List<Regularization> normRegularization = new ArrayList<>();
        private boolean normFrozen;

        /** A 3x3 kernel, stride 1, no padding, conv bias on, affine BN with eps 1e-5 and momentum 0.1, TUNE. */
        public Builder() {
            this.activationFn = Activation.IDENTITY.getActivationFunction();
        }

        /** The layer BN follows (default {@link Kind#CONV2D}); a LINEAR layer ignores the kernel settings. */
        public Builder kind(Kind k) {
            this.kind = k;
            return this;
        }

        public Builder kernelSize(int kH, int kW) {
            this.kernelSize = new int[] {kH, kW};
            return this;
        }

        public Builder stride(int sH, int sW) {
            this.stride = new int[] {sH, sW};
            return this;
        }

        public Builder padding(int pH, int pW) {
            this.padding = new int[] {pH, pW};
            return this;
        }

        public Builder dilation(int dH, int dW) {
            this.dilation = new int[] {dH, dW};
            return this;
        }

        /** Truncate (default) or Strict: explicit padding; Same: "same" padding, explicit padding ignored. */
        public Builder convolutionMode(ConvolutionMode m) {
            this.convolutionMode = m;
            return this;
        }

        public Builder hasBias(boolean b) {
            this.hasBias = b;
            return this;
        }

        public Builder affine(boolean a) {
            this.affine = a;
            return this;
        }

        public Builder eps(double e) {
            this.eps = e;
            return this;
        }

        /** PyTorch's momentum: {@code running <- (1 - m) running + m batch}; DL4J's decay is {@code 1 - m}. */
        public Builder momentum(double m) {
            this.momentum = m;
            return this;
        }

        public Builder unbiasedRunningVar(boolean u) {
            this.unbiasedRunningVar = u;
            return this;
        }

        public Builder mode(Mode m) {
            this.mode = m;
            return this;
        }

        public Builder tuneFold(TuneFold f) {
            this.tuneFold = f;
            return this;
        }

        /** The updater of gamma and beta (default: the layer's). */
        public Builder normUpdater(IUpdater u) {
            this.normUpdater = u;
            return this;
        }

        /**
         * Fixes gamma and beta: their gradients are zero, so no updater or regularisation moves them (the BN of a
         * pair DL4J fine-tunes with FrozenLayerWithBackprop). Gradients still flow through them to the conv.
         */
        public Builder normFrozen(boolean frozen) {
            this.normFrozen = frozen;
            return this;
        }

        /** Regularisation of gamma and beta (default none). */
        public Builder normRegularization(List<Regularization> r) {
            this.normRegularization = new ArrayList<>(r);
            return this;
        }

        /**
         * @throws IllegalArgumentException naming the setting that is out of range, with expected and actual
         */
        @Override
        @SuppressWarnings("unchecked")
        public ConvBNLayer build() {
            pair("kernelSize", kernelSize, 1);
            pair("stride", stride, 1);
            pair("padding", padding, 0);
            pair("dilation", dilation, 1);
            if (kind == null) {
                throw new IllegalArgumentException("kind: expected CONV2D, CONV_TRANSPOSE2D or LINEAR, got null");
            }
            if (convolutionMode == null || convolutionMode == ConvolutionMode.Causal) {
                throw new IllegalArgumentException(
                        "convolutionMode: expected Truncate, Strict or Same, got " + convolutionMode);
            }
            if (kind == Kind.CONV_TRANSPOSE2D && convolutionMode == ConvolutionMode.Same) {
                throw new IllegalArgumentException("convolutionMode: expected Truncate or Strict for CONV_TRANSPOSE2D "
                        + "(explicit padding, as PyTorch's ConvTranspose2d), got Same");
            }
            if (mode == null) {
                throw new IllegalArgumentException("mode: expected TRAIN, EVAL, TUNE or DEPLOY, got null");
            }
            if (tuneFold == null) {
                throw new IllegalArgumentException("tuneFold: expected KEEP or RECOMPUTE, got null");
            }
            if (mode == Mode.DEPLOY && !hasBias && !affine) {
                throw new IllegalArgumentException("mode: DEPLOY needs a conv bias or an affine BN to hold the folded "
                        + "bias, got hasBias=false and affine=false");
            }
            if (activationFn != null && !(activationFn instanceof ActivationIdentity)) {
                throw new IllegalArgumentException("activation: expected identity (put the activation in its own "
                        + "ActivationLayer), got " + activationFn);
            }
            // Range checks of eps and momentum, with the core's messages.
            new BatchNormConfig(1, eps, momentum, affine, unbiasedRunningVar);
            return new ConvBNLayer(this);
        }

        private static void pair(String name, int[] v, int min) {
            if (v == null || v.length != 2 || v[0] < min || v[1] < min) {
                throw new IllegalArgumentException(
                        name + ": expected two values >= " + min + ", got " + Arrays.toString(v));
            }
        }
    }
}
