package org.convbn.bench;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Draws the chart of a results.json written by {@code report}, without measuring again. */
@Command(
        name = "chart",
        description = "Draw the PNG chart of an existing results.json.",
        mixinStandardHelpOptions = true)
final class ChartCommand implements Callable<Integer> {
    @Option(names = "--in", required = true, description = "results JSON written by report")
    Path in;

    @Option(names = "--out", description = "PNG to write (default: ${DEFAULT-VALUE})")
    Path out = Path.of("chart.png");

    @Override
    public Integer call() throws Exception {
        Report report = Json.read(in, Report.class);
        Chart.write(out, report);
        System.out.print(ReportTable.render(report));
        System.out.println("wrote " + out);
        return 0;
    }
}
