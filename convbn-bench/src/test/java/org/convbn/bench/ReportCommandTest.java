package org.convbn.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.convbn.io.AtomicFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The report end to end on a tiny network: child JVMs in interleaved rounds, results.json with the documented names
 * and the paired ratios, the chart; a missing PyTorch is skipped with a note.
 */
class ReportCommandTest {

    @Test
    void reportWritesResultsAndChart(@TempDir Path dir) throws IOException {
        Path json = dir.resolve("results.json");
        Path png = dir.resolve("chart.png");
        int rc = new CommandLine(new ReportCommand())
                .setCaseInsensitiveEnumValuesAllowed(true)
                .execute(
                        "--model",
                        "resnet18",
                        "--batch",
                        "2",
                        "--resolution",
                        "32",
                        "--steps",
                        "2",
                        "--warmup",
                        "0",
                        "--modes",
                        "eval,tune",
                        "--heap",
                        "256m",
                        "--rounds",
                        "2",
                        "--peer",
                        "pytorch",
                        "--python",
                        "/nonexistent/python3",
                        "--out",
                        json.toString(),
                        "--chart",
                        png.toString());
        assertEquals(0, rc);
        assertEquals(2, Json.MAPPER.readTree(json.toFile()).get("rounds").asInt());
        JsonNode root = Json.MAPPER.readTree(json.toFile());
        for (String field : List.of("model", "batch", "resolution", "threads", "backend")) {
            assertTrue(root.has(field), field);
        }
        assertEquals("resnet18", root.get("model").asText());
        JsonNode modes = root.get("modes");
        assertEquals(2, modes.size());
        for (JsonNode m : modes) {
            for (String field :
                    List.of("mode", "step_ms_median", "step_ms_min", "step_ms_max", "peak_bytes", "retained_bytes")) {
                assertTrue(m.has(field), field);
            }
            assertTrue(
                    m.get("step_ms_min").asDouble() <= m.get("step_ms_median").asDouble());
            assertTrue(m.get("retained_bytes").asLong() > 0);
            assertEquals(2, m.get("round_medians_ms").size(), "one median per round");
            assertEquals(2 * 2, m.get("steps_ms").size(), "every measured step of both rounds");
        }
        JsonNode ratios = root.get("ratios");
        assertEquals(1, ratios.size());
        assertEquals("TUNE/EVAL", ratios.get(0).get("name").asText());
        assertTrue(ratios.get(0).get("time_min").asDouble()
                <= ratios.get(0).get("time_median").asDouble());
        long evalActivations = modes.get(0).get("retained_activation_bytes").asLong();
        long tuneActivations = modes.get(1).get("retained_activation_bytes").asLong();
        assertTrue(tuneActivations < evalActivations, "TUNE keeps fewer activation bytes than EVAL");
        byte[] head = Files.readAllBytes(png);
        assertEquals((byte) 0x89, head[0]);
        assertEquals('P', head[1]);
        try (var files = Files.list(dir)) {
            assertFalse(files.anyMatch(f -> f.getFileName().toString().endsWith(".tmp")), "no temporary left");
        }
    }

    @Test
    void badOptionsAreNamed() {
        ReportCommand cmd = new ReportCommand();
        CommandLine cli = new CommandLine(cmd);
        cli.setExecutionExceptionHandler((e, c, p) -> {
            assertTrue(e.getMessage().contains("--resolution"), e.getMessage());
            return 2;
        });
        assertEquals(2, cli.execute("--resolution", "8"));
    }

    @Test
    void anOutputThatCannotBeWrittenIsRefusedBeforeTheRun(@TempDir Path dir) {
        ReportCommand cmd = new ReportCommand();
        CommandLine cli = new CommandLine(cmd);
        cli.setExecutionExceptionHandler((e, c, p) -> {
            assertTrue(e.getMessage().contains("--out") && e.getMessage().contains("directory"), e.getMessage());
            return 2;
        });
        // a directory as --out: refused at once, not after the measurements
        assertEquals(
                2,
                cli.execute(
                        "--out", dir.toString(), "--chart", dir.resolve("c.png").toString()));
    }

    @Test
    void failedWriteLeavesTheOldFileAndNoTemporary(@TempDir Path dir) throws IOException {
        Path target = dir.resolve("results.json");
        Files.writeString(target, "old");
        try {
            AtomicFiles.write(target, out -> {
                out.write("half".getBytes());
                throw new IOException("disk full");
            });
        } catch (IOException expected) {
            assertEquals("writing " + target.toAbsolutePath() + ": disk full", expected.getMessage());
        }
        assertEquals("old", Files.readString(target));
        try (var files = Files.list(dir)) {
            assertEquals(1, files.count());
        }
    }
}
