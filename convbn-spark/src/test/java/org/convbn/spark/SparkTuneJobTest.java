package org.convbn.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.convbn.core.Mode;
import org.convbn.dl4j.ConvBNLayers;
import org.convbn.dl4j.ConvBNRuntimeLayer;
import org.convbn.dl4j.Dl4jFixtures;
import org.deeplearning4j.nn.conf.WorkspaceMode;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.util.ModelSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.learning.config.Nesterovs;
import picocli.CommandLine;

/** The spark-submit job end to end on local[*], and its refusals of bad settings before Spark starts. */
class SparkTuneJobTest {

    private static SparkTuneJob parse(String... args) {
        SparkTuneJob job = new SparkTuneJob();
        new CommandLine(job).parseArgs(args);
        return job;
    }

    /** A saved DL4J network and DataSet files in, the network converted, trained on Spark and written out. */
    @Test
    void trainsASavedNetworkOnDataSetFilesAndWritesItOut(@TempDir Path dir) throws IOException {
        ComputationGraph original =
                Dl4jFixtures.residualGraph(DataType.FLOAT, new Nesterovs(0.05, 0.9), false, WorkspaceMode.ENABLED, 3);
        Path network = dir.resolve("original.zip");
        ModelSerializer.writeModel(original, network.toFile(), true);
        Path data = Files.createDirectories(dir.resolve("data"));
        for (int i = 0; i < 4; i++) {
            new DataSet(Dl4jFixtures.input(DataType.FLOAT, 10 + i), Dl4jFixtures.labels(DataType.FLOAT, 20 + i))
                    .save(data.resolve("part-" + i + ".bin").toFile());
        }
        Path output = dir.resolve("out/tuned.zip");
        int batch = (int) Dl4jFixtures.INPUT_SHAPE[0];
        assertEquals(
                0,
                parse(
                                "--network",
                                network.toString(),
                                "--data",
                                data.toString(),
                                "--batch",
                                String.valueOf(batch),
                                "--steps",
                                "2",
                                "--out",
                                output.toString())
                        .call());

        ComputationGraph tuned = ModelSerializer.restoreComputationGraph(output.toFile(), true);
        List<ConvBNRuntimeLayer> layers = ConvBNLayers.of(tuned);
        assertEquals(3, layers.size(), "every conv -> BN pair converted");
        layers.forEach(l -> assertEquals(Mode.TUNE, l.mode()));
        INDArray w0 = original.getLayer("conv1").getParam("W");
        INDArray w1 = tuned.getLayer("conv1").getParam("W");
        assertTrue(w0.sub(w1).amaxNumber().doubleValue() > 0, "the weights were trained");
        INDArray out = tuned.outputSingle(Dl4jFixtures.input(DataType.FLOAT, 10));
        assertFalse(out.isNaN().any() || out.isInfinite().any(), "finite outputs");
        try (var files = Files.list(output.getParent())) {
            assertEquals(List.of(output), files.toList(), "only the output file, no temporary left");
        }
    }

    @Test
    void badSettingsAreNamedBeforeSparkStarts(@TempDir Path dir) {
        assertMessage("--batch: expected at least 1, got 0", parse("--batch", "0"));
        assertMessage("--averaging: expected at least 1, got 0", parse("--averaging", "0"));
        assertMessage("--steps: expected at least 1, got 0", parse("--steps", "0"));
        assertMessage("--resolution: the zoo ResNet50 needs at least 112, got 64", parse("--resolution", "64"));
        assertMessage("--classes: expected at least 2, got 1", parse("--classes", "1"));
        assertMessage("--lr: expected a finite value >= 0, got NaN", parse("--lr", "NaN"));
        assertMessage("--lr: expected a finite value >= 0, got NaN", parse("--learning-rate", "NaN")); // the old name
        assertMessage(
                "--data: expected with --network",
                parse("--network", dir.resolve("x.zip").toString()));
        assertMessage(
                "--network: expected a ModelSerializer file, got " + dir.resolve("x.zip") + " (missing)",
                parse("--network", dir.resolve("x.zip").toString(), "--data", dir.toString()));
        assertMessage("--out: expected a regular file to write, got a directory", parse("--out", dir.toString()));
    }

    private static void assertMessage(String start, SparkTuneJob job) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, job::call);
        assertTrue(e.getMessage().startsWith(start), e.getMessage());
    }
}
