package org.convbn.bench;

import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import org.convbn.core.Cost;
import org.convbn.core.TuneFold;
import org.convbn.net.Network;
import org.nd4j.linalg.api.buffer.DataType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Parameters and multiply-adds per block and per network, dense against grouped 3x3 convs: the trade grouped
 * convs make, counted (no timing).
 */
@Command(
        name = "cost",
        description = "Count parameters and multiply-adds per block, dense vs grouped 3x3 convs.",
        mixinStandardHelpOptions = true)
final class CostCommand implements Callable<Integer> {
    @Option(
            names = "--model",
            description = "${COMPLETION-CANDIDATES} (a grouped model counts as its dense "
                    + "original) (default: ${DEFAULT-VALUE})")
    Model model = Model.RESNET50;

    @Option(names = "--resolution", description = "input height and width (default: ${DEFAULT-VALUE})")
    int resolution = 224;

    @Option(
            names = "--group-size",
            description = "input channels per group of the grouped convs: a ResNet's 3x3 "
                    + "convs, an EfficientNet's depthwise convs (whose expansion then goes from 6 to 4); MobileNets and RegNet "
                    + "keep their own (default: ${DEFAULT-VALUE}, the paper's; 1 is depthwise)")
    int groupSize = 16;

    @Option(names = "--blocks", description = "print every block, not only the totals")
    boolean blocks;

    @Override
    public Integer call() {
        if (resolution < 32) {
            throw new IllegalArgumentException(
                    "--resolution: expected >= 32 (five stride-2 stages), got " + resolution);
        }
        Map<String, Cost> dense;
        try (Network d = model.build(NetworkStep.CLASSES, DataType.FLOAT, 1, TuneFold.RECOMPUTE, false, 0, 0)) {
            dense = d.cost(resolution, resolution);
        }
        Cost d = total(dense);
        if (!model.groupable()) {
            // MobileNets and RegNet have their own depthwise or grouped convs: their costs alone
            System.out.printf(Locale.ROOT, "%s at %dx%d, per image%n", model.cliName(), resolution, resolution);
            System.out.printf(Locale.ROOT, "%-40s %14s %16s%n", "block", "params", "multiply-adds");
            if (blocks) {
                dense.forEach((name, c) ->
                        System.out.printf(Locale.ROOT, "%-40s %,14d %,16d%n", name, c.parameters(), c.multiplyAdds()));
            }
            System.out.printf(
                    Locale.ROOT,
                    "%-40s %,14d %,16d (%.2f GFLOPs)%n",
                    "total",
                    d.parameters(),
                    d.multiplyAdds(),
                    d.flops() / 1e9);
            return 0;
        }
        Map<String, Cost> grouped;
        try (Network g = model.build(NetworkStep.CLASSES, DataType.FLOAT, 1, TuneFold.RECOMPUTE, false, 0, groupSize)) {
            grouped = g.cost(resolution, resolution);
        }
        System.out.printf(
                Locale.ROOT,
                "%s at %dx%d, per image; grouped: %s with %d input channels per group%n",
                model.cliName(),
                resolution,
                resolution,
                model.isResNet() ? "3x3 convs" : "depthwise convs as group convs (expansion 4)",
                groupSize);
        System.out.printf(
                Locale.ROOT,
                "%-28s %14s %16s %14s %16s%n",
                "block",
                "params",
                "multiply-adds",
                "params G=" + groupSize,
                "mult-adds G=" + groupSize);
        if (blocks) {
            dense.forEach((name, c) -> {
                Cost g = grouped.get(name);
                System.out.printf(
                        Locale.ROOT,
                        "%-28s %,14d %,16d %,14d %,16d%n",
                        name,
                        c.parameters(),
                        c.multiplyAdds(),
                        g.parameters(),
                        g.multiplyAdds());
            });
        }
        Cost g = total(grouped);
        System.out.printf(
                Locale.ROOT,
                "%-28s %,14d %,16d %,14d %,16d%n",
                "total",
                d.parameters(),
                d.multiplyAdds(),
                g.parameters(),
                g.multiplyAdds());
        System.out.printf(
                Locale.ROOT,
                "grouped / dense: parameters %.3f, multiply-adds %.3f (%.2f vs %.2f GFLOPs)%n",
                (double) g.parameters() / d.parameters(),
                (double) g.multiplyAdds() / d.multiplyAdds(),
                g.flops() / 1e9,
                d.flops() / 1e9);
        return 0;
    }

    private static Cost total(Map<String, Cost> costs) {
        return costs.values().stream().reduce(Cost.ZERO, Cost::plus);
    }
}
