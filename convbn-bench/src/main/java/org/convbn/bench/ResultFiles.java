package org.convbn.bench;

import java.nio.file.Path;
import org.convbn.io.AtomicFiles;
import picocli.CommandLine.Option;

/**
 * {@code --out} and {@code --chart}: where a measuring command writes its results (JSON) and their chart (PNG). Each
 * command gives its own defaults; both paths are checked writable before anything is measured, so that a long run does
 * not end without its output.
 */
final class ResultFiles {
    @Option(names = "--out", description = "results JSON (default: ${DEFAULT-VALUE})")
    Path out;

    @Option(names = "--chart", description = "PNG chart of the results (default: ${DEFAULT-VALUE})")
    Path chart;

    /**
     * @param out the default results file
     * @param chart the default chart file
     */
    ResultFiles(String out, String chart) {
        this.out = Path.of(out);
        this.chart = Path.of(chart);
    }

    /** @throws IllegalArgumentException naming --out or --chart when the file cannot be written */
    void checkWritable() {
        AtomicFiles.checkWritable(out, "--out");
        AtomicFiles.checkWritable(chart, "--chart");
    }
}
