package org.convbn.dl4j;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import net.jcip.annotations.NotThreadSafe;
import net.jcip.annotations.ThreadSafe;
import org.convbn.core.Mode;
import org.convbn.core.TuneFold;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.CNN2DFormat;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.ConvolutionMode;
import org.deeplearning4j.nn.conf.GradientNormalization;
import org.deeplearning4j.nn.conf.InputPreProcessor;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.graph.GraphVertex;
import org.deeplearning4j.nn.conf.graph.LayerVertex;
import org.deeplearning4j.nn.conf.layers.BatchNormalization;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.conf.layers.Deconvolution2D;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.FeedForwardLayer;
import org.deeplearning4j.nn.conf.layers.misc.FrozenLayer;
import org.deeplearning4j.nn.conf.layers.misc.FrozenLayerWithBackprop;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.params.BatchNormalizationParamInitializer;
import org.nd4j.linalg.activations.IActivation;
import org.nd4j.linalg.activations.impl.ActivationIdentity;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * Turns every ConvolutionLayer -> BatchNormalization pair of a DL4J network into one {@link ConvBNLayer}, and
 * likewise Deconvolution2D -> BatchNormalization ({@link ConvBNLayer.Kind#CONV_TRANSPOSE2D}) and
 * DenseLayer -> BatchNormalization ({@link ConvBNLayer.Kind#LINEAR}), so an existing model fine-tunes in TUNE mode
 * without being rewritten:
 * <pre>{@code
 *   ComputationGraph tuned = ConvBNConverter.convert(graph).network();
 * }</pre>
 *
 * <p>A pair is fused when the producer (a plain {@link ConvolutionLayer}, a {@link Deconvolution2D} in Truncate or
 * Strict mode, or a {@link DenseLayer} without layer norm; NCHW, identity activation, no weight noise or constraints,
 * not a network output) feeds only the BN, the BN reads only the conv (NCHW, no dropout,
 * preprocessor, weight noise or constraints; its configured activation is ignored, as DL4J ignores it), their gradient normalisations agree, and they are
 * frozen compatibly. Everything else stays exactly as it was, and the {@link ConversionReport} says why.
 *
 * <p>The fused layer is named after the conv (a graph's consumers of the BN are re-pointed to it) and carries
 * over: the conv's weight W (a dense layer's transposed to PyTorch's {@code [nOut, nIn]}) and bias b, BN's gamma, beta, mean and variance (DL4J's log10 of the standard
 * deviation turned back into the variance exactly as DL4J itself does it), eps, momentum = 1 - decay and DL4J's
 * biased running variance; the conv's updater, bias updater, weight init, bias init, regularisation, dropout and
 * gradient normalisation; BN's updater for gamma and beta and its (absent) regularisation of them. The network's
 * other layers keep their configuration and parameters; updater state starts fresh.
 *
 * <p>Freezing: a pair wrapped in FrozenLayer stays frozen (FrozenLayer around the ConvBN layer); both in
 * FrozenLayerWithBackprop likewise; a trainable conv before a FrozenLayerWithBackprop BN (DL4J's way of
 * fine-tuning with frozen BN) becomes a trainable layer with gamma and beta fixed
 * ({@link ConvBNLayer.Builder#normFrozen}). Other combinations are left alone.
 */
@ThreadSafe
public final class ConvBNConverter {
    private final Mode mode;
    private final TuneFold tuneFold;
    private final boolean absorbConvBias;

    private ConvBNConverter(Builder b) {
        this.mode = b.mode;
        this.tuneFold = b.tuneFold;
        this.absorbConvBias = b.absorbConvBias;
    }

    /** @return a builder: TUNE, the fold kept between forward and backward, conv biases kept */
    public static Builder builder() {
        return new Builder();
    }

    /** Converts with the defaults (TUNE); the argument is not modified. */
    public static Conversion<ComputationGraph> convert(ComputationGraph graph) {
        return builder().build().apply(graph);
    }

    /** Converts with the defaults (TUNE); the argument is not modified. */
    public static Conversion<MultiLayerNetwork> convert(MultiLayerNetwork network) {
        return builder().build().apply(network);
    }

    /**
     * A converted network and the report of what was fused.
     *
     * @param network a new, initialised network; the original is untouched
     * @param report what was fused and what was left alone
     */
    @NotThreadSafe
    public record Conversion<N>(N network, ConversionReport report) {}

    // ---------------------------------------------------------------- ComputationGraph

    /**
     * @param graph an initialised graph, not modified
     * @return an equivalent new graph with its pairs fused
     * @throws IllegalArgumentException if {@code graph} is not initialised
     */
    public Conversion<ComputationGraph> apply(ComputationGraph graph) {
        Objects.requireNonNull(graph, "graph");
        if (graph.params() == null) {
            throw new IllegalArgumentException(
                    "graph: expected an initialised ComputationGraph (call init()), got " + "one without parameters");
        }
        ComputationGraphConfiguration conf = graph.getConfiguration().clone();
        Map<String, List<String>> consumers = consumers(conf);
        List<ConversionReport.Converted> converted = new ArrayList<>();
        List<ConversionReport.LeftAlone> leftAlone = new ArrayList<>();
        Map<String, Fusion> fusions = new LinkedHashMap<>();
        List<String> pairedBns = new ArrayList<>();

        for (Map.Entry<String, GraphVertex> e : conf.getVertices().entrySet()) {
            String name = e.getKey();
            if (!(e.getValue() instanceof LayerVertex lv)
                    || !isProducer(unwrap(lv.getLayerConf().getLayer()))) {
                continue;
            }
            Optional<String> why = Optional.empty();
            List<String> outs = consumers.getOrDefault(name, List.of());
            String bnName = outs.size() == 1 ? outs.get(0) : null;
            if (conf.getNetworkOutputs().contains(name)) {
                why = Optional.of("it is a network output");
            } else if (outs.size() != 1) {
                why = Optional.of(
                        "it feeds " + outs.size() + " vertices " + outs + ", expected exactly one BatchNormalization");
            } else if (!(conf.getVertices().get(bnName) instanceof LayerVertex bnVertex)
                    || !(unwrap(bnVertex.getLayerConf().getLayer()) instanceof BatchNormalization)) {
                why = Optional.of("its consumer \"" + bnName + "\" is not a BatchNormalization");
            } else if (!conf.getVertexInputs().get(bnName).equals(List.of(name))) {
                why = Optional.of("BatchNormalization \"" + bnName + "\" has other inputs too: "
                        + conf.getVertexInputs().get(bnName));
            } else if (bnVertex.getPreProcessor() != null) {
                why = Optional.of("a preprocessor sits between it and \"" + bnName + "\"");
            } else {
                Fusion f =
                        Fusion.of(name, lv.getLayerConf(), lv.getPreProcessor(), bnName, bnVertex.getLayerConf(), this);
                why = f.problem();
                if (why.isEmpty()) {
                    fusions.put(name, f);
                    pairedBns.add(bnName);
                    converted.add(new ConversionReport.Converted(name, bnName, name, f.training()));
                }
            }
            why.ifPresent(r -> leftAlone.add(new ConversionReport.LeftAlone(name, r)));
        }
        for (Map.Entry<String, GraphVertex> e : conf.getVertices().entrySet()) {
            if (e.getValue() instanceof LayerVertex lv
                    && unwrap(lv.getLayerConf().getLayer()) instanceof BatchNormalization
                    && !pairedBns.contains(e.getKey())) {
                List<String> in = conf.getVertexInputs().get(e.getKey());
                leftAlone.add(new ConversionReport.LeftAlone(
                        e.getKey(), "not preceded by a fusable " + PRODUCERS + " (inputs " + in + ")"));
            }
        }

        for (Fusion f : fusions.values()) {
            conf.getVertices().put(f.convName, new LayerVertex(f.fusedConf(), f.preProcessor));
            conf.getVertices().remove(f.bnName);
            conf.getVertexInputs().remove(f.bnName);
            for (List<String> inputs : conf.getVertexInputs().values()) {
                inputs.replaceAll(n -> n.equals(f.bnName) ? f.convName : n);
            }
            conf.getNetworkOutputs().replaceAll(n -> n.equals(f.bnName) ? f.convName : n);
        }
        conf.setIterationCount(graph.getConfiguration().getIterationCount());
        conf.setEpochCount(graph.getConfiguration().getEpochCount());

        ComputationGraph out = new ComputationGraph(conf);
        out.init();
        for (org.deeplearning4j.nn.graph.vertex.GraphVertex v : out.getVertices()) {
            if (!v.hasLayer()) {
                continue;
            }
            String name = v.getVertexName();
            Layer target = v.getLayer();
            Fusion f = fusions.get(name);
            if (f == null) {
                copyParams(graph.getLayer(name), target);
            } else {
                f.copyParams(graph.getLayer(f.convName), graph.getLayer(f.bnName), target);
            }
        }
        finish(out.getLayers());
        return new Conversion<>(out, new ConversionReport(mode, converted, leftAlone));
    }

    private static Map<String, List<String>> consumers(ComputationGraphConfiguration conf) {
        Map<String, List<String>> consumers = new HashMap<>();
        conf.getVertexInputs().forEach((vertex, inputs) -> {
            for (String in : inputs) {
                consumers.computeIfAbsent(in, k -> new ArrayList<>()).add(vertex);
            }
        });
        return consumers;
    }

    // ---------------------------------------------------------------- MultiLayerNetwork

    /**
     * @param network an initialised network, not modified
     * @return an equivalent new network with its pairs fused (layer indices after a pair shift down by one)
     * @throws IllegalArgumentException if {@code network} is not initialised
     */
    public Conversion<MultiLayerNetwork> apply(MultiLayerNetwork network) {
        Objects.requireNonNull(network, "network");
        if (network.params() == null) {
            throw new IllegalArgumentException("network: expected an initialised MultiLayerNetwork (call init()), "
                    + "got one without parameters");
        }
        MultiLayerConfiguration conf = network.getLayerWiseConfigurations().clone();
        List<NeuralNetConfiguration> confs = conf.getConfs();
        Map<Integer, InputPreProcessor> pre = conf.getInputPreProcessors();
        List<ConversionReport.Converted> converted = new ArrayList<>();
        List<ConversionReport.LeftAlone> leftAlone = new ArrayList<>();
        List<NeuralNetConfiguration> newConfs = new ArrayList<>();
        Map<Integer, InputPreProcessor> newPre = new HashMap<>();
        /** For each new layer index: the old indices it comes from (one, or conv and BN). */
        List<int[]> sources = new ArrayList<>();
        Map<Integer, Fusion> fusions = new HashMap<>();

        for (int i = 0; i < confs.size(); i++) {
            org.deeplearning4j.nn.conf.layers.Layer layer = unwrap(confs.get(i).getLayer());
            int newIndex = newConfs.size();
            if (pre.containsKey(i)) {
                newPre.put(newIndex, pre.get(i));
            }
            if (isProducer(layer)) {
                Optional<String> why;
                if (i + 1 >= confs.size() || !(unwrap(confs.get(i + 1).getLayer()) instanceof BatchNormalization)) {
                    why = Optional.of("the next layer is not a BatchNormalization");
                } else if (pre.containsKey(i + 1)) {
                    why = Optional.of("a preprocessor sits between it and layer " + (i + 1));
                } else {
                    Fusion f = Fusion.of(
                            String.valueOf(i), confs.get(i), pre.get(i), String.valueOf(i + 1), confs.get(i + 1), this);
                    why = f.problem();
                    if (why.isEmpty()) {
                        newConfs.add(f.fusedConf());
                        sources.add(new int[] {i, i + 1});
                        fusions.put(newIndex, f);
                        converted.add(new ConversionReport.Converted(
                                String.valueOf(i), String.valueOf(i + 1), String.valueOf(newIndex), f.training()));
                        i++;
                        continue;
                    }
                }
                leftAlone.add(new ConversionReport.LeftAlone(String.valueOf(i), why.get()));
            } else if (layer instanceof BatchNormalization) {
                leftAlone.add(
                        new ConversionReport.LeftAlone(String.valueOf(i), "not preceded by a fusable " + PRODUCERS));
            }
            newConfs.add(confs.get(i));
            sources.add(new int[] {i});
        }
        conf.setConfs(newConfs);
        conf.setInputPreProcessors(newPre);
        conf.setIterationCount(network.getLayerWiseConfigurations().getIterationCount());
        conf.setEpochCount(network.getLayerWiseConfigurations().getEpochCount());

        MultiLayerNetwork out = new MultiLayerNetwork(conf);
        out.init();
        for (int j = 0; j < sources.size(); j++) {
            int[] src = sources.get(j);
            if (src.length == 1) {
                copyParams(network.getLayer(src[0]), out.getLayer(j));
            } else {
                fusions.get(j).copyParams(network.getLayer(src[0]), network.getLayer(src[1]), out.getLayer(j));
            }
        }
        finish(out.getLayers());
        return new Conversion<>(out, new ConversionReport(mode, converted, leftAlone));
    }

    // ---------------------------------------------------------------- shared

    /** Fused layers are built unfolded; a DEPLOY target folds them now that they hold the trained values. */
    private void finish(Layer[] layers) {
        if (mode == Mode.DEPLOY) {
            ConvBNLayers.setMode(layers, Mode.DEPLOY);
        }
    }

    private static void copyParams(Layer from, Layer to) {
        INDArray p = from.params();
        if (p != null && p.length() > 0) {
            to.params().assign(p);
        }
    }

    /** The layers a BN may follow in a fused pair, for messages. */
    private static final String PRODUCERS = "ConvolutionLayer, Deconvolution2D or DenseLayer";

    /** @return whether the layer is a candidate producer: any convolution (reported if not fusable) or a dense layer */
    private static boolean isProducer(org.deeplearning4j.nn.conf.layers.Layer l) {
        return l instanceof ConvolutionLayer || l instanceof DenseLayer;
    }

    /** @return the kind a layer of exactly this class fuses as, or null */
    private static ConvBNLayer.Kind kindOf(org.deeplearning4j.nn.conf.layers.Layer l) {
        if (l.getClass() == ConvolutionLayer.class) {
            return ConvBNLayer.Kind.CONV2D;
        }
        if (l.getClass() == Deconvolution2D.class) {
            return ConvBNLayer.Kind.CONV_TRANSPOSE2D;
        }
        return l.getClass() == DenseLayer.class ? ConvBNLayer.Kind.LINEAR : null;
    }

    static org.deeplearning4j.nn.conf.layers.Layer unwrap(org.deeplearning4j.nn.conf.layers.Layer l) {
        if (l instanceof FrozenLayer f) {
            return unwrap(f.getLayer());
        }
        if (l instanceof FrozenLayerWithBackprop f) {
            return unwrap(f.getUnderlying());
        }
        return l;
    }

    /** How a layer is frozen. */
    private enum Freezing {
        NONE,
        WITH_BACKPROP,
        FROZEN;

        static Freezing of(org.deeplearning4j.nn.conf.layers.Layer l) {
            if (l instanceof FrozenLayer) {
                return FROZEN;
            }
            return l instanceof FrozenLayerWithBackprop ? WITH_BACKPROP : NONE;
        }
    }

    /** One candidate pair and, when fusable, the fused layer's configuration and parameter copy. */
    private static final class Fusion {
        final String convName;
        final String bnName;
        final InputPreProcessor preProcessor;
        private final NeuralNetConfiguration convConf;
        /** The producer: a ConvolutionLayer (or subclass), a Deconvolution2D or a DenseLayer. */
        private final FeedForwardLayer conv;
        /** What it fuses as; null for a class that does not fuse. */
        private final ConvBNLayer.Kind kind;

        private final BatchNormalization bn;
        private final Freezing convFreezing;
        private final Freezing bnFreezing;
        private final ConvBNConverter options;

        private Fusion(
                String convName,
                NeuralNetConfiguration convConf,
                InputPreProcessor preProcessor,
                String bnName,
                NeuralNetConfiguration bnConf,
                ConvBNConverter options) {
            this.convName = convName;
            this.bnName = bnName;
            this.preProcessor = preProcessor;
            this.convConf = convConf;
            this.conv = (FeedForwardLayer) unwrap(convConf.getLayer());
            this.kind = kindOf(conv);
            this.bn = (BatchNormalization) unwrap(bnConf.getLayer());
            this.convFreezing = Freezing.of(convConf.getLayer());
            this.bnFreezing = Freezing.of(bnConf.getLayer());
            this.options = options;
        }

        static Fusion of(
                String convName,
                NeuralNetConfiguration convConf,
                InputPreProcessor preProcessor,
                String bnName,
                NeuralNetConfiguration bnConf,
                ConvBNConverter options) {
            return new Fusion(convName, convConf, preProcessor, bnName, bnConf, options);
        }

        /** @return why this pair cannot be fused, or empty */
        Optional<String> problem() {
            if (kind == null) {
                return Optional.of("it is a " + conv.getClass().getSimpleName() + ", not a plain " + PRODUCERS);
            }
            if (kind == ConvBNLayer.Kind.CONV_TRANSPOSE2D
                    && ((Deconvolution2D) conv).getConvolutionMode() == ConvolutionMode.Same) {
                return Optional.of("a Deconvolution2D in ConvolutionMode.Same; the fused transposed conv takes "
                        + "explicit padding (Truncate or Strict), as PyTorch's ConvTranspose2d");
            }
            if (kind == ConvBNLayer.Kind.LINEAR && ((DenseLayer) conv).hasLayerNorm()) {
                return Optional.of("a DenseLayer with layer normalisation");
            }
            if (!isIdentity(conv.getActivationFn())) {
                return Optional.of("its activation is " + conv.getActivationFn() + ", expected identity");
            }
            // BN's activation needs no check: DL4J's BatchNormalization never applies it (the global default, sigmoid,
            // lands in its configuration all the same).
            if (conv instanceof ConvolutionLayer c
                            && c.getCnn2dDataFormat() != null
                            && c.getCnn2dDataFormat() != CNN2DFormat.NCHW
                    || kind != ConvBNLayer.Kind.LINEAR && bn.getCnn2DFormat() != CNN2DFormat.NCHW) {
                return Optional.of("NHWC layout; the ConvBN layer is NCHW");
            }
            if (conv.getWeightNoise() != null || bn.getWeightNoise() != null) {
                return Optional.of("weight noise is not supported by the ConvBN layer");
            }
            if (bn.getIDropout() != null) {
                return Optional.of("dropout between the conv and BatchNormalization \"" + bnName + "\"");
            }
            if (hasConstraints(conv) || hasConstraints(bn)) {
                return Optional.of("parameter constraints are not carried over");
            }
            if (bn.isLockGammaBeta() && (bn.getGamma() != 1.0 || bn.getBeta() != 0.0)) {
                return Optional.of("BatchNormalization \"" + bnName + "\" locks gamma=" + bn.getGamma() + ", beta="
                        + bn.getBeta() + "; only the identity affine (1, 0) maps to a non-affine BN");
            }
            if (conv.getGradientNormalization() != bn.getGradientNormalization()
                    || conv.getGradientNormalizationThreshold() != bn.getGradientNormalizationThreshold()
                    || !elementWise(conv.getGradientNormalization())) {
                return Optional.of("gradient normalisation " + conv.getGradientNormalization() + " / "
                        + bn.getGradientNormalization() + " would change meaning over the fused parameters");
            }
            if (options.mode == Mode.DEPLOY && !(hasBias() && !options.absorbConvBias) && bn.isLockGammaBeta()) {
                return Optional.of("DEPLOY needs a conv bias or an affine BN to hold the folded bias, got neither");
            }
            if (training() == null) {
                return Optional.of("conv is " + convFreezing + " and BatchNormalization is " + bnFreezing
                        + "; fused, they could not train as they do now");
            }
            return Optional.empty();
        }

        /** @return how the fused layer trains, or null when the freezing combination has no equivalent */
        String training() {
            return switch (convFreezing) {
                case NONE ->
                    switch (bnFreezing) {
                        case NONE -> "trainable";
                        case WITH_BACKPROP -> "trainable, BN frozen: gamma and beta fixed";
                        case FROZEN -> null;
                    };
                case WITH_BACKPROP -> bnFreezing == Freezing.WITH_BACKPROP ? "FrozenLayerWithBackprop" : null;
                case FROZEN -> bnFreezing == Freezing.NONE ? null : "FrozenLayer";
            };
        }

        /** @return whether the producer adds a bias */
        private boolean hasBias() {
            return conv instanceof ConvolutionLayer c ? c.hasBias() : ((DenseLayer) conv).hasBias();
        }

        NeuralNetConfiguration fusedConf() {
            boolean hasBias = hasBias() && !options.absorbConvBias;
            Mode buildMode = options.mode == Mode.DEPLOY ? Mode.EVAL : options.mode;
            ConvBNLayer.Builder b = new ConvBNLayer.Builder().kind(kind);
            if (conv instanceof ConvolutionLayer c) {
                b.kernelSize(c.getKernelSize()[0], c.getKernelSize()[1])
                        .stride(c.getStride()[0], c.getStride()[1])
                        .padding(c.getPadding()[0], c.getPadding()[1])
                        .dilation(c.getDilation()[0], c.getDilation()[1])
                        .convolutionMode(c.getConvolutionMode());
            }
            b.hasBias(hasBias)
                    .affine(!bn.isLockGammaBeta())
                    .eps(bn.getEps())
                    .momentum(1 - bn.getDecay())
                    .unbiasedRunningVar(false)
                    .mode(buildMode)
                    .tuneFold(options.tuneFold)
                    .normUpdater(bn.getIUpdater())
                    .normFrozen(bnFreezing == Freezing.WITH_BACKPROP && convFreezing == Freezing.NONE)
                    .nIn(conv.getNIn())
                    .nOut(conv.getNOut())
                    .name(conv.getLayerName());
            ConvBNLayer fused = b.build();
            fused.setIUpdater(conv.getIUpdater());
            fused.setBiasUpdater(conv.getBiasUpdater());
            fused.setWeightInitFn(conv.getWeightInitFn());
            fused.setBiasInit(conv.getBiasInit());
            fused.setRegularization(conv.getRegularization());
            fused.setRegularizationBias(conv.getRegularizationBias());
            fused.setIDropout(conv.getIDropout());
            fused.setGradientNormalization(conv.getGradientNormalization());
            fused.setGradientNormalizationThreshold(conv.getGradientNormalizationThreshold());
            org.deeplearning4j.nn.conf.layers.Layer wrapped =
                    switch (convFreezing) {
                        case NONE -> fused;
                        case WITH_BACKPROP -> new FrozenLayerWithBackprop(fused);
                        case FROZEN -> new FrozenLayer(fused);
                    };
            wrapped.setLayerName(conv.getLayerName());
            NeuralNetConfiguration nnc = convConf.clone();
            nnc.clearVariables();
            nnc.setLayer(wrapped);
            return nnc;
        }

        /** Copies the trained conv and BN tensors into the fused layer's parameter views. */
        void copyParams(Layer convLayer, Layer bnLayer, Layer fusedLayer) {
            Map<String, INDArray> c = convLayer.paramTable();
            Map<String, INDArray> n = bnLayer.paramTable();
            Map<String, INDArray> f = fusedLayer.paramTable();
            // DenseLayer's W is [nIn, nOut]; the fused layer keeps PyTorch's [nOut, nIn].
            f.get(ConvBNParamInitializer.WEIGHT_KEY)
                    .assign(kind == ConvBNLayer.Kind.LINEAR ? c.get("W").transpose() : c.get("W"));
            INDArray mean = n.get(BatchNormalizationParamInitializer.GLOBAL_MEAN);
            INDArray convBias = hasBias() ? c.get("b").reshape(mean.shape()) : null;
            if (f.containsKey(ConvBNParamInitializer.BIAS_KEY)) {
                f.get(ConvBNParamInitializer.BIAS_KEY).assign(convBias);
                f.get(ConvBNParamInitializer.MEAN_KEY).assign(mean);
            } else if (convBias != null) {
                // (conv + b) - mean == conv - (mean - b): the bias moves into the mean.
                f.get(ConvBNParamInitializer.MEAN_KEY).assign(mean.sub(convBias));
            } else {
                f.get(ConvBNParamInitializer.MEAN_KEY).assign(mean);
            }
            if (f.containsKey(ConvBNParamInitializer.GAMMA_KEY)) {
                f.get(ConvBNParamInitializer.GAMMA_KEY).assign(n.get(BatchNormalizationParamInitializer.GAMMA));
                f.get(ConvBNParamInitializer.BETA_KEY).assign(n.get(BatchNormalizationParamInitializer.BETA));
            }
            f.get(ConvBNParamInitializer.VAR_KEY).assign(variance(n));
        }

        /** BN's variance; from log10(std) computed as DL4J computes it, so both normalise by the same number. */
        private INDArray variance(Map<String, INDArray> bnParams) {
            INDArray log10Std = bnParams.get(BatchNormalizationParamInitializer.GLOBAL_LOG_STD);
            if (log10Std == null) {
                return bnParams.get(BatchNormalizationParamInitializer.GLOBAL_VAR);
            }
            INDArray var =
                    Transforms.pow(Nd4j.valueArrayOf(log10Std.shape(), 10.0, log10Std.dataType()), log10Std, false);
            return var.muli(var);
        }

        private static boolean isIdentity(IActivation a) {
            return a == null || a instanceof ActivationIdentity;
        }

        private static boolean elementWise(GradientNormalization g) {
            return g == null
                    || g == GradientNormalization.None
                    || g == GradientNormalization.ClipElementWiseAbsoluteValue;
        }

        private static boolean hasConstraints(org.deeplearning4j.nn.conf.layers.Layer l) {
            return l.getConstraints() != null && !l.getConstraints().isEmpty();
        }
    }

    // ---------------------------------------------------------------- builder

    /** Options of a conversion. */
    @NotThreadSafe
    public static final class Builder {
        private Mode mode = Mode.TUNE;
        private TuneFold tuneFold = TuneFold.RECOMPUTE;
        private boolean absorbConvBias;

        private Builder() {}

        /** The mode of the fused layers (default TUNE); DEPLOY folds the trained values in place. */
        public Builder mode(Mode m) {
            this.mode = Objects.requireNonNull(m, "mode");
            return this;
        }

        /** Whether TUNE keeps the fold between forward and backward (default) or recomputes it. */
        public Builder tuneFold(TuneFold f) {
            this.tuneFold = Objects.requireNonNull(f, "tuneFold");
            return this;
        }

        /**
         * Moves each conv bias into the BN mean ({@code mean - b}), dropping the redundant parameter: the same
         * function, one parameter fewer, but no gradient for b any more (default: keep b).
         */
        public Builder absorbConvBias(boolean absorb) {
            this.absorbConvBias = absorb;
            return this;
        }

        public ConvBNConverter build() {
            return new ConvBNConverter(this);
        }
    }
}
