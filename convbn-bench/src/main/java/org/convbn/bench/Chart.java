package org.convbn.bench;

import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import org.convbn.io.AtomicFiles;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;

/** Charts as PNG files: the report's step time and memory per mode (two bar charts side by side), learning curves. */
final class Chart {
    private static final int WIDTH = 640;
    private static final int HEIGHT = 420;

    static {
        // PNGs are encoded in memory: ImageIO's default file cache registers files to delete at exit, which fails
        // once the JVM is shutting down (a run stopping on SIGTERM still writes its curve)
        ImageIO.setUseCache(false);
    }

    private Chart() {}

    /**
     * Renders and encodes a tiny chart, so that the graphics and image classes are loaded before a long run: a chart
     * written while the JVM shuts down (after SIGTERM) cannot load them any more.
     */
    static void prepare() throws IOException {
        BufferedImage image = BitmapEncoder.getBufferedImage(
                new XYChartBuilder().width(8).height(8).build());
        ImageIO.write(image, "png", OutputStream.nullOutputStream());
    }

    /** Writes a learning curve as a PNG to {@code target}, atomically. */
    static void write(Path target, XYChart chart) throws IOException {
        writePng(target, BitmapEncoder.getBufferedImage(chart));
    }

    static void write(Path target, Report r) throws IOException {
        List<String> modes = r.modes().stream()
                .map(m -> m.mode()
                        .replace("PYTORCH_", "PyTorch ")
                        .replace("TUNE_KEEP", "TUNE-K")
                        .replace("_REVERSIBLE", "+rev")
                        .replace("DL4J_CONVERTED_", "DL4J>")
                        .replace("DL4J_FROZEN_BN", "DL4J"))
                .toList();
        int width = Math.max(WIDTH, 150 * modes.size()); // room for every bar label
        String title = r.model() + " batch " + r.batch() + " " + r.resolution() + "x" + r.resolution();
        CategoryChart time = new CategoryChartBuilder()
                .width(width)
                .height(HEIGHT)
                .title("Step time, " + title)
                .xAxisTitle("mode")
                .yAxisTitle("ms (median)")
                .build();
        time.addSeries(
                "step time",
                modes,
                r.modes().stream().map(ModeResult::stepMsMedian).toList());
        CategoryChart memory = new CategoryChartBuilder()
                .width(width)
                .height(HEIGHT)
                .title("Memory, " + title)
                .xAxisTitle("mode")
                .yAxisTitle("MiB")
                .build();
        memory.addSeries(
                "peak above baseline",
                modes,
                r.modes().stream().map(m -> m.peakBytes() / 1048576.0).toList());
        memory.addSeries(
                "retained for backward",
                modes,
                r.modes().stream()
                        .map(m -> Math.max(0, m.retainedBytes()) / 1048576.0)
                        .toList());
        BufferedImage both = new BufferedImage(2 * width, HEIGHT, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = both.createGraphics();
        g.drawImage(BitmapEncoder.getBufferedImage(time), 0, 0, null);
        g.drawImage(BitmapEncoder.getBufferedImage(memory), width, 0, null);
        g.dispose();
        writePng(target, both);
    }

    private static void writePng(Path target, BufferedImage image) throws IOException {
        AtomicFiles.write(target, out -> {
            if (!ImageIO.write(image, "png", out)) {
                throw new IOException("no PNG writer available");
            }
        });
    }
}
