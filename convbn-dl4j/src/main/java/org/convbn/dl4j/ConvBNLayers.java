package org.convbn.dl4j;

import java.util.ArrayList;
import java.util.List;
import net.jcip.annotations.ThreadSafe;
import org.convbn.core.Mode;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.layers.wrapper.BaseWrapperLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;

/** Network-wide operations on the {@link ConvBNRuntimeLayer}s of a DL4J network, frozen ones included. */
@ThreadSafe
public final class ConvBNLayers {
    private ConvBNLayers() {}

    /**
     * @return the ConvBN layers of {@code graph}, in the graph's layer order, unwrapped from frozen wrappers
     */
    public static List<ConvBNRuntimeLayer> of(ComputationGraph graph) {
        return of(graph.getLayers());
    }

    /** @return the ConvBN layers of {@code network}, in layer order, unwrapped from frozen wrappers */
    public static List<ConvBNRuntimeLayer> of(MultiLayerNetwork network) {
        return of(network.getLayers());
    }

    static List<ConvBNRuntimeLayer> of(Layer[] layers) {
        List<ConvBNRuntimeLayer> out = new ArrayList<>();
        for (Layer l : layers) {
            Layer inner = l;
            while (inner instanceof BaseWrapperLayer w) {
                inner = w.getUnderlying();
            }
            if (inner instanceof ConvBNRuntimeLayer c) {
                out.add(c);
            }
        }
        return out;
    }

    /**
     * Switches every ConvBN layer of the graph to {@code mode} (see {@link ConvBNRuntimeLayer#setMode}).
     *
     * @return the number of layers switched
     */
    public static int setMode(ComputationGraph graph, Mode mode) {
        return setMode(graph.getLayers(), mode);
    }

    /**
     * Switches every ConvBN layer of the network to {@code mode} (see {@link ConvBNRuntimeLayer#setMode}).
     *
     * @return the number of layers switched
     */
    public static int setMode(MultiLayerNetwork network, Mode mode) {
        return setMode(network.getLayers(), mode);
    }

    static int setMode(Layer[] layers, Mode mode) {
        List<ConvBNRuntimeLayer> all = of(layers);
        for (ConvBNRuntimeLayer l : all) {
            l.setMode(mode);
        }
        return all.size();
    }
}
