package org.convbn.net;

import net.jcip.annotations.ThreadSafe;

import java.util.LinkedHashMap;
import java.util.Map;

import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.convbn.core.Cost;

/**
 * Parameters and multiply-adds of a {@link ResNet} or an {@link EfficientNet}, by tracing shapes through it (nothing
 * is computed). Counted: conv weights and biases, BN gamma and beta, linear layers; multiply-adds of convs and linear
 * layers (BN, activations, pooling and the SE gate's product are elementwise and not counted, as in torchvision's
 * published figures).
 */
@ThreadSafe
public final class NetworkCosts {
    private NetworkCosts() {
    }

    /**
     * The cost of every block and of the head at an input resolution, per sample: stem, 3x3/2 max pool (padding
     * 1), each unit's main path from the unit input, its shortcut from the same input.
     *
     * @param net read, not modified
     * @param resolution input height and width
     * @return the cost per conv name (then "fc"), in forward order
     * @throws IllegalArgumentException if the resolution is too small for some block (named by the block)
     */
    public static Map<String, Cost> of(ResNet net, int resolution) {
        Map<String, Cost> out = new LinkedHashMap<>();
        long[] x = trace(out, net.stem(), new long[] {1, 3, resolution, resolution});
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
        out.put("fc", net.head().cost());
        return out;
    }

    /**
     * The cost of every block, squeeze-and-excitation layer and the classifier at an input resolution, per sample,
     * in forward order: {@code features.0.0}, then per unit its expansion, depthwise, SE ({@code ...block.k}, its
     * two 1x1 convs on the pooled vector) and projection, {@code features.8.0}, {@code classifier.1}.
     *
     * @param net read, not modified
     * @param resolution input height and width
     * @return the cost per module name, in forward order
     * @throws IllegalArgumentException if the resolution is too small for some block (named by the block)
     */
    public static Map<String, Cost> of(EfficientNet net, int resolution) {
        Map<String, Cost> out = new LinkedHashMap<>();
        long[] x = trace(out, net.stem(), new long[] {1, 3, resolution, resolution});
        for (MBConv unit : net.units()) {
            long[] h = x;
            if (unit.expandLayer().isPresent()) {
                h = trace(out, unit.expandLayer().get(), h);
            }
            h = trace(out, unit.depthwiseLayer(), h);
            SqueezeExcitation se = unit.squeezeExcitation();
            out.put(se.name(), se.cost());
            x = trace(out, unit.projectLayer(), h);
        }
        trace(out, net.headLayer(), x);
        out.put("classifier.1", net.classifier().cost());
        return out;
    }

    /** @return the sum of {@link #of(ResNet, int)} */
    public static Cost total(ResNet net, int resolution) {
        return sum(of(net, resolution));
    }

    /** @return the sum of {@link #of(EfficientNet, int)} */
    public static Cost total(EfficientNet net, int resolution) {
        return sum(of(net, resolution));
    }

    /**
     * @return {@link #of(ResNet, int)} or {@link #of(EfficientNet, int)}
     * @throws IllegalArgumentException for another kind of network
     */
    public static Map<String, Cost> of(Network net, int resolution) {
        if (net instanceof ResNet r) {
            return of(r, resolution);
        }
        if (net instanceof EfficientNet e) {
            return of(e, resolution);
        }
        throw new IllegalArgumentException("net: expected a ResNet or an EfficientNet, got " + net.getClass());
    }

    /** @return the sum of {@link #of(Network, int)} */
    public static Cost total(Network net, int resolution) {
        return sum(of(net, resolution));
    }

    private static Cost sum(Map<String, Cost> costs) {
        return costs.values().stream().reduce(Cost.ZERO, Cost::plus);
    }

    private static long[] trace(Map<String, Cost> into, ConvLayer layer, long[] input) {
        ConvConfig c = layer.conv();
        String name = layer.block().map(NamedBlock::convName).orElseGet(() -> layer.layerParameters().keySet()
                .iterator().next().replaceAll("\\.weight$", ""));
        try {
            into.put(name, layer.cost((int) input[2], (int) input[3]));
            return c.outputShape(input);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("resolution: too small for layer " + name + " (" + e.getMessage()
                    + ")", e);
        }
    }

    private static long[] trace(Map<String, Cost> into, NamedBlock b, long[] input) {
        ConvBNConfig c = b.block().config();
        try {
            into.put(b.convName(), Cost.of(c, (int) input[2], (int) input[3]));
            return c.conv().outputShape(input);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("resolution: too small for block " + b.convName() + " (" + e.getMessage()
                    + ")", e);
        }
    }
}
