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
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.convbn.io.Safetensors;
import org.convbn.transfer.TestImages;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import picocli.CommandLine;

/**
 * The {@code finetune} command end to end on real images: Fashion-MNIST (a 400-image subset) written as PNG class
 * folders, a ResNet-18 pretrained by the command at 32x32 on classes 0-4, fine-tuned on classes 5-9 in TUNE with a
 * frozen stem; resume after epoch 1 of 2 equals an uninterrupted run (float64); bad input refused by name.
 */
class FineTuneCommandTest {
    /** Resuming repeats the same float64 operations on the same values. */
    private static final double RESUME_TOLERANCE = 1e-12;
    /** Epochs of the memory run: two to settle, then the ones checked against the second. */
    private static final int EPOCHS_FOR_MEMORY = 5;
    /**
     * How much an epoch's peak RSS may exceed the second epoch's: the JVM still sizes its young generation up over
     * the first epochs (up to +11% by epoch 4 measured, then flat); while the garbage of earlier epochs stayed alive
     * with the native buffers it holds, it grew by 10-35% every epoch (+47% by epoch 4).
     */
    private static final double RSS_CREEP = 0.15;

    @TempDir
    static Path dir;

    static Path source;
    static Path target;
    static Path pretrained;

    @BeforeAll
    static void pretrain() throws IOException {
        source = TestImages.write(dir.resolve("source"), List.of(0, 1, 2, 3, 4), 16);
        target = TestImages.write(dir.resolve("target"), List.of(5, 6, 7, 8, 9), 12);
        pretrained = dir.resolve("pretrained.safetensors");
        Run r = run(
                "--data",
                source.toString(),
                "--mode",
                "train",
                "--epochs",
                "3",
                "--batch",
                "8",
                "--resolution",
                "32",
                "--lr",
                "0.01",
                "--dtype",
                "double",
                "--validation",
                "0",
                "--out",
                pretrained.toString(),
                "--curve",
                dir.resolve("pre.json").toString(),
                "--chart",
                dir.resolve("pre.png").toString());
        assertEquals(0, r.rc, r.err);
    }

    record Run(int rc, String out, String err) {}

    static Run run(String... args) {
        CommandLine cli = BenchMain.commandLine();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cli.setOut(new PrintWriter(out));
        cli.setErr(new PrintWriter(err));
        List<String> all = new ArrayList<>(List.of("finetune", "--quiet"));
        all.addAll(Arrays.asList(args));
        int rc = cli.execute(all.toArray(new String[0]));
        return new Run(rc, out.toString(), err.toString());
    }

    /** The TUNE run's command line; {@code more} adds options or replaces the value of one already given. */
    private static List<String> tune(Path work, int epochs, String... more) {
        List<String> a = new ArrayList<>(List.of(
                "--weights",
                pretrained.toString(),
                "--data",
                target.toString(),
                "--mode",
                "tune",
                "--frozen-parts",
                "1",
                "--epochs",
                Integer.toString(epochs),
                "--batch",
                "8",
                "--resolution",
                "32",
                "--lr",
                "0.003",
                "--dtype",
                "double",
                "--validation",
                "0.25",
                "--schedule",
                "linear",
                "--out",
                work.resolve("tuned.safetensors").toString(),
                "--curve",
                work.resolve("curve.json").toString(),
                "--chart",
                work.resolve("curve.png").toString()));
        // Options given again in 'more' replace the default value; flags (no value) are appended.
        for (int i = 0; i < more.length; i++) {
            int at = a.indexOf(more[i]);
            boolean flag = i + 1 >= more.length || more[i + 1].startsWith("--");
            if (at >= 0 && !flag) {
                a.set(at + 1, more[++i]);
            } else {
                a.add(more[i]);
                if (!flag) {
                    a.add(more[++i]);
                }
            }
        }
        return a;
    }

    @Test
    void fineTunesInTuneWritesWeightsCurveChartAndAFoldedExport() throws IOException {
        Path work = dir.resolve("one");
        Run r = run(tune(
                        work,
                        1,
                        "--export-folded",
                        work.resolve("folded.safetensors").toString())
                .toArray(new String[0]));
        assertEquals(0, r.rc, r.err);
        Map<String, INDArray> tuned =
                Safetensors.read(work.resolve("tuned.safetensors")).tensors();
        assertEquals(
                new ArrayList<>(Safetensors.read(pretrained).tensors().keySet()),
                new ArrayList<>(tuned.keySet()),
                "torchvision names, in module order");
        assertEquals(5, tuned.get("fc.weight").size(0));
        Map<String, INDArray> folded =
                Safetensors.read(work.resolve("folded.safetensors")).tensors();
        assertTrue(folded.containsKey("layer1.0.conv1.bias") && !folded.containsKey("layer1.0.bn1.weight"));
        JsonNode curve = new ObjectMapper().readTree(work.resolve("curve.json").toFile());
        assertEquals("TUNE", curve.get("mode").asText());
        assertEquals(1, curve.get("epochs").size());
        double accuracy = curve.get("epochs").get(0).get("validation_accuracy").asDouble();
        assertTrue(accuracy >= 0 && accuracy <= 1, "accuracy " + accuracy);
        assertTrue(Files.size(work.resolve("curve.png")) > 1000, "chart written");
    }

    @Test
    void resumingAfterEpochOneOfTwoEqualsAnUninterruptedRun() throws IOException {
        Path whole = dir.resolve("whole");
        assertEquals(0, run(tune(whole, 2).toArray(new String[0])).rc);
        Path parts = dir.resolve("parts");
        String ckpt = parts.resolve("ckpt").toString();
        Run first = run(tune(parts, 1, "--checkpoint-dir", ckpt).toArray(new String[0]));
        assertEquals(0, first.rc, first.err);
        // The first part planned one epoch; the linear schedule's first rate is the same for one epoch or two, so
        // extending it to two on purpose gives the uninterrupted run.
        Run second = run(tune(parts, 2, "--checkpoint-dir", ckpt, "--resume", "--override", "epochs")
                .toArray(new String[0]));
        assertEquals(0, second.rc, second.err);
        Map<String, INDArray> a =
                Safetensors.read(whole.resolve("tuned.safetensors")).tensors();
        Map<String, INDArray> b =
                Safetensors.read(parts.resolve("tuned.safetensors")).tensors();
        assertEquals(a.keySet(), b.keySet());
        for (String k : a.keySet()) {
            double d = a.get(k).sub(b.get(k)).amaxNumber().doubleValue();
            assertTrue(d <= RESUME_TOLERANCE, k + " differs by " + d);
        }
        JsonNode curve = new ObjectMapper().readTree(parts.resolve("curve.json").toFile());
        assertEquals(2, curve.get("epochs").size(), "the curve keeps the epoch before the resume");
    }

    /** The pretraining ran with {@code --validation 0}: it says so and writes no numbers for it. */
    @Test
    void withoutValidationTheRunSaysSoAndTheCurveHoldsNulls() throws IOException {
        JsonNode epoch = new ObjectMapper()
                .readTree(dir.resolve("pre.json").toFile())
                .get("epochs")
                .get(0);
        assertTrue(
                epoch.get("validation_loss").isNull()
                        && epoch.get("validation_accuracy").isNull(),
                epoch.toString());
        assertTrue(epoch.get("train_loss").isNumber(), epoch.toString());
    }

    /**
     * SIGTERM in the middle of a run (a separate JVM): the step in progress finishes, the run says where it stopped
     * and which checkpoint holds what, the checkpoint is whole and no temporary file stays.
     */
    @Test
    void aSignalStopsTheRunAfterTheCurrentStepKeepingTheLastCheckpoint() throws Exception {
        Path work = dir.resolve("signal");
        Path ckpt = work.resolve("ckpt");
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx1g",
                "-cp",
                System.getProperty("java.class.path"),
                BenchMain.class.getName(),
                "finetune",
                "--quiet"));
        command.addAll(tune(work, 1000, "--checkpoint-dir", ckpt.toString()));
        Path log = Files.createDirectories(work).resolve("log.txt");
        Process p = new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
        Path checkpoint = ckpt.resolve(FineTuneCommand.CHECKPOINT);
        long deadline = System.nanoTime() + 300_000_000_000L;
        while (!Files.exists(checkpoint) && p.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(200);
        }
        assertTrue(
                p.isAlive() && Files.exists(checkpoint),
                "the run wrote its first checkpoint:\n" + Files.readString(log));
        p.destroy(); // SIGTERM
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "the run ended");
        String out = Files.readString(log);
        assertEquals(143, p.exitValue(), out); // 128 + SIGTERM, after the shutdown hook let the step finish
        assertTrue(out.contains("asked to end; stopping after the current step"), out);
        assertTrue(out.contains("stopped: epoch ") && out.contains("the epoch is not recorded"), out);
        assertTrue(out.contains("the last checkpoint, " + checkpoint + ", holds epoch "), out);
        int epoch = Integer.parseInt(Safetensors.read(checkpoint).metadata().get("epoch"));
        assertTrue(epoch >= 1, "epoch " + epoch);
        try (var files = Files.walk(work)) {
            assertEquals(
                    List.of(),
                    files.filter(f -> f.getFileName().toString().endsWith(".tmp"))
                            .toList());
        }
    }

    /**
     * A float64 run over several epochs in its own JVM: the arena peaks at the same bytes every epoch, and the
     * process's peak RSS stops growing after the first epochs (it grew by a third per epoch while the garbage of
     * an epoch, with the native buffers it holds, stayed until the heap filled).
     */
    @Test
    void peakMemoryIsFlatAcrossEpochs() throws Exception {
        Path work = dir.resolve("memory");
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp",
                System.getProperty("java.class.path"),
                BenchMain.class.getName(),
                "finetune",
                "--quiet"));
        command.addAll(tune(work, EPOCHS_FOR_MEMORY));
        Path log = Files.createDirectories(work).resolve("log.txt");
        Process p = new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
        assertTrue(p.waitFor(600, TimeUnit.SECONDS), "the run ended");
        assertEquals(0, p.exitValue(), Files.readString(log));
        JsonNode epochs =
                new ObjectMapper().readTree(work.resolve("curve.json").toFile()).get("epochs");
        assertEquals(EPOCHS_FOR_MEMORY, epochs.size());
        double arena = epochs.get(0).get("arena_peak_mib").asDouble();
        double settled = epochs.get(1).get("peak_resident_mib").asDouble();
        for (JsonNode e : epochs) {
            assertEquals(arena, e.get("arena_peak_mib").asDouble(), "the arena's peak, exact: " + epochs);
        }
        for (int i = 2; i < epochs.size(); i++) {
            double rss = epochs.get(i).get("peak_resident_mib").asDouble();
            assertTrue(
                    rss <= settled * (1 + RSS_CREEP),
                    "epoch " + (i + 1) + " peaked at " + rss + " MiB, epoch 2 at " + settled + ": " + epochs);
        }
    }

    @Test
    void badInputIsRefusedByName() throws IOException {
        Path work = dir.resolve("bad");
        Run r = run(tune(
                        work,
                        1,
                        "--mode",
                        "eval",
                        "--checkpoint-dir",
                        work.resolve("none").toString(),
                        "--resume")
                .toArray(new String[0]));
        assertEquals(2, r.rc);
        assertTrue(r.err.contains("--resume: expected a checkpoint at"), r.err);

        Path ckpt = work.resolve("ckpt");
        assertEquals(0, run(tune(work, 1, "--checkpoint-dir", ckpt.toString()).toArray(new String[0])).rc);
        r = run(tune(work, 1, "--checkpoint-dir", ckpt.toString(), "--resume", "--mode", "eval")
                .toArray(new String[0]));
        assertEquals(2, r.rc);
        assertTrue(
                r.err.contains("--resume: the checkpoint " + ckpt.resolve("checkpoint.safetensors") + " was made "
                        + "for another run: --mode TUNE in the checkpoint, EVAL now (cannot change on resume)"),
                r.err);
        assertTrue(!r.err.contains("--override"), "a mode cannot be overridden: " + r.err);

        // Another seed and validation fraction would re-split the data (validation images already trained on):
        // refused with every difference, the split's identity among them, and the way to insist.
        r = run(tune(
                        work,
                        1,
                        "--checkpoint-dir",
                        ckpt.toString(),
                        "--resume",
                        "--seed",
                        "2",
                        "--validation",
                        "0.5",
                        "--lr",
                        "0.01")
                .toArray(new String[0]));
        assertEquals(2, r.rc);
        assertTrue(
                r.err.contains("was made for another run: --lr 0.003 in the checkpoint, 0.01 now; --seed 1 in the "
                        + "checkpoint, 2 now; --validation 0.25 in the checkpoint, 0.5 now; the split (the data's training "
                        + "and validation files) "),
                r.err);
        assertTrue(
                r.err.contains("; to continue with the values given now: --override lr,seed,validation,split"), r.err);
        r = run(tune(work, 1, "--checkpoint-dir", ckpt.toString(), "--resume", "--override", "mode")
                .toArray(new String[0]));
        assertEquals(2, r.rc);
        assertTrue(
                r.err.contains("--override: expected some of [lr, weight-decay, schedule, epochs, classes, seed, "
                        + "validation, split, resolution, batch], got mode"),
                r.err);
        r = run(tune(work, 1, "--override", "lr").toArray(new String[0]));
        assertEquals(2, r.rc);
        assertTrue(r.err.contains("--override: expected with --resume, got [lr]"), r.err);
        // A new learning rate (and a longer linear schedule) on purpose: the run continues and says so.
        r = run(tune(
                        work,
                        2,
                        "--checkpoint-dir",
                        ckpt.toString(),
                        "--resume",
                        "--lr",
                        "0.001",
                        "--override",
                        "lr,epochs")
                .toArray(new String[0]));
        assertEquals(0, r.rc, r.err);
        JsonNode epochs =
                new ObjectMapper().readTree(work.resolve("curve.json").toFile()).get("epochs");
        assertEquals(0.003, epochs.get(0).get("learning_rate").asDouble(), 1e-15);
        assertEquals(
                0.001 * (1 - 1 / 2.0),
                epochs.get(1).get("learning_rate").asDouble(),
                1e-15,
                "epoch 2 of 2 at the new rate's linear decay");

        Files.createDirectories(work.resolve("flat"));
        Files.writeString(work.resolve("flat/a.png"), "x");
        r = run(
                "--data",
                work.resolve("flat").toString(),
                "--out",
                work.resolve("o.safetensors").toString());
        assertEquals(2, r.rc);
        assertTrue(r.err.contains("expected one subfolder per class"), r.err);

        r = run(tune(work, 1, "--model", "resnet50").toArray(new String[0]));
        assertEquals(2, r.rc);
        assertTrue(r.err.contains("do not fit resnet50"), r.err);

        r = run(tune(work, 1, "--validation", "0.99").toArray(new String[0]));
        assertEquals(2, r.rc);
        assertTrue(r.err.contains("--validation 0.99 leaves 0 training images, expected at least --batch 8"), r.err);

        Path blocked = work.resolve("file-not-dir");
        Files.writeString(blocked, "x");
        r = run(tune(work, 1, "--out", blocked.resolve("tuned.safetensors").toString())
                .toArray(new String[0]));
        assertEquals(2, r.rc);
        assertTrue(r.err.contains("--out: cannot create the directory"), r.err);
    }
}
