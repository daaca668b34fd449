package org.convbn.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.convbn.train.data.Idx;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The fine-tuning example end to end on a tiny synthetic dataset in Fashion-MNIST's files (so the build never needs
 * the Debian package): every phase runs and the curves and the chart are written.
 */
class LowResolutionCommandTest {
    @TempDir
    Path dir;

    /** Label k: a bright horizontal band at rows 2k+4..2k+6 on a dark background. */
    private void split(String prefix, int n) throws IOException {
        byte[] images = new byte[n * 28 * 28];
        byte[] labels = new byte[n];
        for (int i = 0; i < n; i++) {
            int k = i % 10;
            labels[i] = (byte) k;
            for (int r = 2 * k + 4; r < 2 * k + 7; r++) {
                for (int c = 0; c < 28; c++) {
                    images[i * 784 + r * 28 + c] = (byte) 200;
                }
            }
        }
        Idx.write(dir.resolve(prefix + "-images-idx3-ubyte.gz"), new int[] {n, 28, 28}, images);
        Idx.write(dir.resolve(prefix + "-labels-idx1-ubyte.gz"), new int[] {n}, labels);
    }

    @Test
    void writesCurvesOfEveryModeAndAChart() throws IOException {
        split("train", 64);
        split("t10k", 32);
        Path json = dir.resolve("curves.json");
        Path png = dir.resolve("curves.png");
        int rc = new CommandLine(new LowResolutionCommand())
                .setCaseInsensitiveEnumValuesAllowed(true)
                .execute(
                        "--data",
                        dir.toString(),
                        "--train-size",
                        "64",
                        "--test-size",
                        "32",
                        "--batch",
                        "32",
                        "--pretrain-epochs",
                        "1",
                        "--finetune-epochs",
                        "1",
                        "--eval-every",
                        "1",
                        "--out",
                        json.toString(),
                        "--chart",
                        png.toString());
        assertEquals(0, rc);
        JsonNode root = new ObjectMapper().readTree(json.toFile());
        assertEquals(14, root.get("low_resolution").asInt());
        assertEquals(3, root.get("pretraining").size(), "step 0 and after each of 2 steps");
        for (String mode : new String[] {"EVAL", "TUNE", "DEPLOY"}) {
            JsonNode curve = root.get("finetuning").get(mode);
            assertEquals(3, curve.size(), mode);
            assertEquals(2, curve.get(2).get("step").asInt(), mode);
        }
        assertTrue(Files.size(png) > 1000, "chart written");
    }

    @Test
    void aMissingDatasetGetsTheInstallHint() {
        CommandLine cli = BenchMain.commandLine();
        StringWriter err = new StringWriter();
        cli.setErr(new PrintWriter(err));
        int rc = cli.execute("low-resolution", "--data", dir.resolve("nowhere").toString());
        assertEquals(2, rc);
        assertTrue(err.toString().contains("apt-get install dataset-fashion-mnist"), err.toString());
    }
}
