package org.convbn.net;

import java.util.LinkedHashMap;
import java.util.Map;
import net.jcip.annotations.ThreadSafe;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.Cost;

/**
 * The shape tracing behind every network's {@link Network#cost}: each layer's cost on the shape the previous layers
 * hand it (nothing is computed).
 */
@ThreadSafe
final class NetworkCosts {
    private NetworkCosts() {}

    /** A ResNet: stem, 3x3/2 max pool (padding 1), each unit's main path from the unit input, its shortcut from it. */
    static Map<String, Cost> of(ResNet net, int height, int width) {
        Map<String, Cost> out = new LinkedHashMap<>();
        long[] x = trace(out, net.stem(), new long[] {1, 3, height, width});
        x = new long[] {1, x[1], (x[2] - 1) / 2 + 1, (x[3] - 1) / 2 + 1};
        for (Stage stage : net.stages()) {
            for (ResidualUnit unit : stage.units()) {
                long[] h = x;
                for (NamedBlock b : unit.mainBlocks()) {
                    h = trace(out, b, h);
                }
                long[] unitInput = x;
                unit.shortcutBlock().ifPresent(b -> trace(out, b, unitInput));
                x = h;
            }
        }
        out.put("fc", net.classifier().cost());
        return out;
    }

    /**
     * An inverted-residual network: its stem, then per unit its shortcut, expansion, depthwise,
     * squeeze-and-excitation (two 1x1 convs on the pooled vector, under the gate's name) and projection, its last
     * conv (when there is one), its head's linear layers.
     */
    static Map<String, Cost> of(
            ConvLayer stem,
            Iterable<MBConv> units,
            ConvLayer last,
            Map<String, Cost> classifier,
            int height,
            int width) {
        Map<String, Cost> out = new LinkedHashMap<>();
        long[] x = trace(out, stem, new long[] {1, 3, height, width});
        for (MBConv unit : units) {
            long[] unitInput = x;
            unit.shortcutLayer().ifPresent(l -> trace(out, l, unitInput));
            long[] h = x;
            if (unit.expandLayer().isPresent()) {
                h = trace(out, unit.expandLayer().get(), h);
            }
            h = trace(out, unit.depthwiseLayer(), h);
            unit.squeezeExcitation().ifPresent(se -> out.put(se.name(), se.cost()));
            x = trace(out, unit.projectLayer(), h);
        }
        if (last != null) {
            trace(out, last, x);
        }
        out.putAll(classifier);
        return out;
    }

    private static long[] trace(Map<String, Cost> into, ConvLayer layer, long[] input) {
        String name = layer.block()
                .map(NamedBlock::convName)
                .orElseGet(
                        () -> layer.layerParameters().keySet().iterator().next().replaceAll("\\.weight$", ""));
        try {
            into.put(name, layer.cost((int) input[2], (int) input[3]));
            return layer.conv().outputShape(input);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("input: too small for layer " + name + " (" + e.getMessage() + ")", e);
        }
    }

    private static long[] trace(Map<String, Cost> into, NamedBlock b, long[] input) {
        ConvBNConfig c = b.block().config();
        try {
            into.put(b.convName(), Cost.of(c, (int) input[2], (int) input[3]));
            return c.conv().outputShape(input);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(
                    "input: too small for block " + b.convName() + " (" + e.getMessage() + ")", e);
        }
    }
}
