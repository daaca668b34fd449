package org.convbn.dl4j;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import net.jcip.annotations.ThreadSafe;
import org.deeplearning4j.nn.api.ParamInitializer;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.layers.Layer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Lays out a {@link ConvBNLayer}'s parameters in its slice of the network's flat parameter vector, in this order:
 * {@code W} ('c' order, in PyTorch's layout for the layer's kind: {@code [nOut, nIn, kH, kW]} for a conv, DL4J's and
 * PyTorch's OIHW; {@code [nIn, nOut, kH, kW]} for a transposed conv; {@code [nOut, nIn]} for a dense layer),
 * {@code b}, {@code gamma}, {@code beta},
 * {@code mean}, {@code var} ({@code [nOut]} each; b only with a conv bias, gamma and beta only when affine).
 * Gradients use the same layout. Fresh parameters: W from the layer's weight init with DL4J's conv fan-in and
 * fan-out, b = the layer's bias init, gamma = 1, beta = 0, mean = 0, var = 1.
 */
@ThreadSafe
public final class ConvBNParamInitializer implements ParamInitializer {
    public static final String WEIGHT_KEY = "W";
    public static final String BIAS_KEY = "b";
    public static final String GAMMA_KEY = "gamma";
    public static final String BETA_KEY = "beta";
    public static final String MEAN_KEY = "mean";
    public static final String VAR_KEY = "var";
    static final List<String> ALL_KEYS = List.of(WEIGHT_KEY, BIAS_KEY, GAMMA_KEY, BETA_KEY, MEAN_KEY, VAR_KEY);

    private static final ConvBNParamInitializer INSTANCE = new ConvBNParamInitializer();

    private ConvBNParamInitializer() {}

    /** @return the initializer (stateless) */
    public static ConvBNParamInitializer getInstance() {
        return INSTANCE;
    }

    @Override
    public long numParams(NeuralNetConfiguration conf) {
        return numParams(conf.getLayer());
    }

    @Override
    public long numParams(Layer layer) {
        long n = 0;
        for (String key : paramKeys(layer)) {
            n += paramLength((ConvBNLayer) layer, key);
        }
        return n;
    }

    @Override
    public List<String> paramKeys(Layer layer) {
        ConvBNLayer l = (ConvBNLayer) layer;
        List<String> keys = new ArrayList<>(6);
        keys.add(WEIGHT_KEY);
        if (l.hasBias()) {
            keys.add(BIAS_KEY);
        }
        if (l.isAffine()) {
            keys.add(GAMMA_KEY);
            keys.add(BETA_KEY);
        }
        keys.add(MEAN_KEY);
        keys.add(VAR_KEY);
        return keys;
    }

    @Override
    public List<String> weightKeys(Layer layer) {
        return List.of(WEIGHT_KEY);
    }

    @Override
    public List<String> biasKeys(Layer layer) {
        return ((ConvBNLayer) layer).hasBias() ? List.of(BIAS_KEY) : List.of();
    }

    @Override
    public boolean isWeightParam(Layer layer, String key) {
        return WEIGHT_KEY.equals(key);
    }

    @Override
    public boolean isBiasParam(Layer layer, String key) {
        return BIAS_KEY.equals(key);
    }

    @Override
    public Map<String, INDArray> init(NeuralNetConfiguration conf, INDArray paramsView, boolean initializeParams) {
        ConvBNLayer layer = (ConvBNLayer) conf.getLayer();
        Map<String, INDArray> views = views(layer, paramsView);
        if (initializeParams) {
            int[] k = layer.getKind() == ConvBNLayer.Kind.LINEAR ? new int[] {1, 1} : layer.getKernelSize();
            int[] s = layer.getKind() == ConvBNLayer.Kind.LINEAR ? new int[] {1, 1} : layer.getStride();
            double fanIn = (double) layer.getNIn() * k[0] * k[1];
            double fanOut = (double) layer.getNOut() * k[0] * k[1] / ((double) s[0] * s[1]);
            INDArray w = views.get(WEIGHT_KEY);
            layer.getWeightInitFn().init(fanIn, fanOut, w.shape(), 'c', w);
            if (layer.hasBias()) {
                views.get(BIAS_KEY).assign(layer.getBiasInit());
            }
            if (layer.isAffine()) {
                views.get(GAMMA_KEY).assign(1);
                views.get(BETA_KEY).assign(0);
            }
            views.get(MEAN_KEY).assign(0);
            views.get(VAR_KEY).assign(1);
        }
        for (String key : views.keySet()) {
            conf.addVariable(key);
        }
        return views;
    }

    @Override
    public Map<String, INDArray> getGradientsFromFlattened(NeuralNetConfiguration conf, INDArray gradientView) {
        return views((ConvBNLayer) conf.getLayer(), gradientView);
    }

    /** Views of a flat array, one per parameter, shaped as the block expects. */
    private Map<String, INDArray> views(ConvBNLayer layer, INDArray flat) {
        long expected = numParams(layer);
        if (flat.length() != expected) {
            throw new IllegalArgumentException("paramsView: expected " + expected + " elements for layer \""
                    + layer.getLayerName() + "\", got " + flat.length());
        }
        INDArray vector = flat.reshape(flat.length());
        Map<String, INDArray> views = new LinkedHashMap<>();
        long offset = 0;
        for (String key : paramKeys(layer)) {
            long n = paramLength(layer, key);
            INDArray slice = vector.get(NDArrayIndex.interval(offset, offset + n));
            views.put(key, key.equals(WEIGHT_KEY) ? slice.reshape('c', weightShape(layer)) : slice);
            offset += n;
        }
        return views;
    }

    static long[] weightShape(ConvBNLayer layer) {
        int[] k = layer.getKernelSize();
        return switch (layer.getKind()) {
            case CONV2D -> new long[] {layer.getNOut(), layer.getNIn(), k[0], k[1]};
            case CONV_TRANSPOSE2D -> new long[] {layer.getNIn(), layer.getNOut(), k[0], k[1]};
            case LINEAR -> new long[] {layer.getNOut(), layer.getNIn()};
        };
    }

    static long paramLength(ConvBNLayer layer, String key) {
        if (WEIGHT_KEY.equals(key)) {
            long n = 1;
            for (long d : weightShape(layer)) {
                n *= d;
            }
            return n;
        }
        return layer.getNOut();
    }
}
