package org.convbn.net;

import java.util.LinkedHashMap;
import java.util.Map;

import org.convbn.core.ConvBNConfig;
import org.convbn.core.Cost;

/** Parameters and multiply-adds of a {@link ResNet}, by tracing shapes through it (nothing is computed). */
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

    /** @return the sum of {@link #of} */
    public static Cost total(ResNet net, int resolution) {
        return of(net, resolution).values().stream().reduce(Cost.ZERO, Cost::plus);
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
