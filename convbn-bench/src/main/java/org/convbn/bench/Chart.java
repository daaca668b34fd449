package org.convbn.bench;

import org.convbn.io.AtomicFiles;

import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import javax.imageio.ImageIO;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;

/** The report as a PNG: step time and memory per mode, two bar charts side by side. */
final class Chart {
    private static final int WIDTH = 640;
    private static final int HEIGHT = 420;

    private Chart() {
    }

    static void write(Path target, Report r) throws IOException {
        List<String> modes = r.modes().stream().map(m -> m.mode().replace("PYTORCH_", "PyTorch ")
                .replace("TUNE_KEEP", "TUNE-K")
                .replace("_REVERSIBLE", "+rev").replace("DL4J_CONVERTED_", "DL4J>").replace("DL4J_FROZEN_BN", "DL4J"))
                .toList();
        int width = Math.max(WIDTH, 150 * modes.size()); // room for every bar label
        String title = r.model() + " batch " + r.batch() + " " + r.resolution() + "x" + r.resolution();
        CategoryChart time = new CategoryChartBuilder().width(width).height(HEIGHT).title("Step time, " + title)
                .xAxisTitle("mode").yAxisTitle("ms (median)").build();
        time.addSeries("step time", modes, r.modes().stream().map(ModeResult::stepMsMedian).toList());
        CategoryChart memory = new CategoryChartBuilder().width(width).height(HEIGHT).title("Memory, " + title)
                .xAxisTitle("mode").yAxisTitle("MiB").build();
        memory.addSeries("peak above baseline", modes, r.modes().stream().map(m -> m.peakBytes() / 1048576.0).toList());
        memory.addSeries("retained for backward", modes,
                r.modes().stream().map(m -> Math.max(0, m.retainedBytes()) / 1048576.0).toList());
        BufferedImage both = new BufferedImage(2 * width, HEIGHT, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = both.createGraphics();
        g.drawImage(BitmapEncoder.getBufferedImage(time), 0, 0, null);
        g.drawImage(BitmapEncoder.getBufferedImage(memory), width, 0, null);
        g.dispose();
        AtomicFiles.write(target, out -> {
            if (!ImageIO.write(both, "png", out)) {
                throw new IOException("no PNG writer available");
            }
        });
    }
}
