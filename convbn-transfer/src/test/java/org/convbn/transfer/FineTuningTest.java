package org.convbn.transfer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import javax.imageio.ImageIO;
import org.convbn.core.Mode;
import org.convbn.io.Safetensors;
import org.convbn.nd4j.Optimizer;
import org.convbn.net.Network;
import org.convbn.net.ResNet;
import org.convbn.net.StateDict;
import org.convbn.net.Zoo;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.learning.regularization.L2Regularization;
import org.nd4j.linalg.learning.regularization.WeightDecay;

/**
 * Fine-tuning a ResNet-18 pretrained in the test (TRAIN, Fashion-MNIST classes 0-4 at 32x32) on classes 5-9, in
 * float64: resume is exact, exports load back, a frozen prefix is not touched, mismatches are refused by name.
 */
class FineTuningTest {
    /** Resuming repeats the same float64 operations on the same values: only reordering could differ, and none does. */
    private static final double RESUME_TOLERANCE = 1e-12;

    private static final int RESOLUTION = 32;
    private static final int BATCH = 8;
    /** 30 steps: the running statistics (momentum 0.1) get 1 - 0.9^30 = 96% of the way from their initial values. */
    private static final int PRETRAIN_EPOCHS = 3;

    @TempDir
    static Path shared;

    static Path pretrained;
    static ImageFolder target;

    @BeforeAll
    static void pretrain() throws IOException {
        ImageFolder source =
                ImageFolder.scan(TestImages.write(shared.resolve("source"), List.of(0, 1, 2, 3, 4), 16), 0, 1);
        target = ImageFolder.scan(TestImages.write(shared.resolve("target"), List.of(5, 6, 7, 8, 9), 12), 0.25, 1);
        ResNet net = ResNet.builder(ResNet.Variant.RESNET18)
                .classes(5)
                .dataType(DataType.DOUBLE)
                .seed(3)
                .mode(Mode.TRAIN)
                .build();
        try (FineTuning job = FineTuning.start(net, config(Mode.TRAIN, 0, PRETRAIN_EPOCHS))) {
            for (int e = 0; e < PRETRAIN_EPOCHS; e++) {
                job.runEpoch(batches(source.train(), source.classes(), true), null, (b, n, l) -> {});
            }
            pretrained = shared.resolve("pretrained.safetensors");
            job.exportWeights(pretrained);
        }
    }

    static FineTuning.Config config(Mode mode, int frozen, int epochs) {
        return FineTuning.Config.builder()
                .mode(mode)
                .frozenParts(frozen)
                .optimizer(FineTuning.OptimizerKind.NESTEROV)
                .learningRate(0.003)
                .weightDecay(1e-4)
                .schedule(FineTuning.LrSchedule.LINEAR)
                .epochs(epochs)
                .build();
    }

    static ImageBatches batches(List<ImageFolder.Example> examples, List<String> classes, boolean train) {
        return ImageBatches.builder(examples, classes)
                .resolution(RESOLUTION)
                .batch(BATCH)
                .training(train)
                .seed(5)
                .dataType(DataType.DOUBLE)
                .build();
    }

    static Network fromPretrained() throws IOException {
        Network net = Pretrained.load("resnet18", pretrained, DataType.DOUBLE, Mode.EVAL);
        net.replaceHead(target.classes().size(), 11);
        return net;
    }

    static Map<String, INDArray> copy(Map<String, INDArray> m) {
        Map<String, INDArray> c = new LinkedHashMap<>();
        m.forEach((k, v) -> c.put(k, v.dup()));
        return c;
    }

    static double maxDifference(Map<String, INDArray> a, Map<String, INDArray> b) {
        assertEquals(a.keySet(), b.keySet());
        double worst = 0;
        for (String k : a.keySet()) {
            worst = Math.max(worst, a.get(k).sub(b.get(k)).amaxNumber().doubleValue());
        }
        return worst;
    }

    @ParameterizedTest
    @EnumSource(
            value = Mode.class,
            names = {"TRAIN", "TUNE", "DEPLOY"})
    void resumingAfterEpochOneOfTwoGivesTheParametersOfAnUninterruptedRun(Mode mode, @TempDir Path dir)
            throws IOException {
        FineTuning.Config config = config(mode, 1, 2);
        ImageBatches train = batches(target.train(), target.classes(), true);
        ImageBatches validation = batches(target.validation(), target.classes(), false);
        Map<String, INDArray> uninterrupted;
        List<FineTuning.Epoch> uninterruptedHistory;
        try (FineTuning job = FineTuning.start(fromPretrained(), config)) {
            job.runEpoch(train, validation, (b, n, l) -> {});
            job.runEpoch(train, validation, (b, n, l) -> {});
            uninterrupted = copy(NetworkState.of(job.network()));
            uninterruptedHistory = job.history();
        }
        Path checkpoint = dir.resolve("checkpoint.safetensors");
        try (FineTuning job = FineTuning.start(fromPretrained(), config)) {
            job.runEpoch(train, validation, (b, n, l) -> {});
            job.checkpoint(checkpoint);
        }
        try (FineTuning job = FineTuning.resume(fromPretrained(), config, checkpoint)) {
            assertEquals(1, job.epochsDone());
            job.runEpoch(train, validation, (b, n, l) -> {});
            Map<String, INDArray> resumed = NetworkState.of(job.network());
            double d = maxDifference(uninterrupted, resumed);
            assertTrue(d <= RESUME_TOLERANCE, mode + ": resumed parameters differ by " + d);
            assertEquals(
                    uninterruptedHistory.get(1).trainLoss(),
                    job.history().get(1).trainLoss(),
                    RESUME_TOLERANCE);
            assertEquals(
                    uninterruptedHistory.get(1).validationAccuracy(),
                    job.history().get(1).validationAccuracy());
        }
    }

    /** MobileNetV2 with dropout drawn: the resumed epoch draws the masks the uninterrupted one drew. */
    @Test
    void aNetworkWithDropoutResumesExactly(@TempDir Path dir) throws IOException {
        FineTuning.Config config = config(Mode.TUNE, 12, 2); // features.12 .. 18 and the classifier train
        ImageBatches train = batches(target.train(), target.classes(), true);
        Map<String, INDArray> uninterrupted;
        try (FineTuning job = FineTuning.start(mobileNet(), config)) {
            job.runEpoch(train, null, (b, n, l) -> {});
            job.runEpoch(train, null, (b, n, l) -> {});
            uninterrupted = copy(NetworkState.of(job.network()));
        }
        Path checkpoint = dir.resolve("checkpoint.safetensors");
        try (FineTuning job = FineTuning.start(mobileNet(), config)) {
            job.runEpoch(train, null, (b, n, l) -> {});
            job.checkpoint(checkpoint);
        }
        try (FineTuning job = FineTuning.resume(mobileNet(), config, checkpoint)) {
            job.runEpoch(train, null, (b, n, l) -> {});
            double d = maxDifference(uninterrupted, NetworkState.of(job.network()));
            assertTrue(d <= RESUME_TOLERANCE, "resumed parameters differ by " + d);
            assertTrue(job.network().stochastic(), "the run trains with dropout");
        }
    }

    private static Network mobileNet() {
        Network net = Zoo.create("mobilenet_v2", target.classes().size(), DataType.DOUBLE, 3);
        net.setStochastic(true); // PyTorch's train(): dropout 0.2 before the classifier
        return net;
    }

    @ParameterizedTest
    @EnumSource(
            value = Mode.class,
            names = {"EVAL", "DEPLOY"})
    void exportedWeightsLoadBackWithEveryTensorEqualAndTheFrozenPrefixUntouched(Mode mode, @TempDir Path dir)
            throws IOException {
        Map<String, INDArray> before;
        try (Network loaded = fromPretrained()) {
            before = copy(StateDict.of(loaded));
        }
        try (FineTuning job = FineTuning.start(fromPretrained(), config(mode, 2, 1))) {
            job.runEpoch(batches(target.train(), target.classes(), true), null, (b, n, l) -> {});
            Path out = dir.resolve("tuned.safetensors");
            job.exportWeights(out);
            Map<String, INDArray> exported = Safetensors.read(out).tensors();
            job.network().setMode(Mode.EVAL);
            Map<String, INDArray> live = StateDict.of(job.network());
            assertEquals(live.keySet(), exported.keySet());
            assertEquals(0.0, maxDifference(live, exported));
            // The stem and layer1 were frozen: bit for bit as loaded. layer2 on trained.
            for (String k : live.keySet()) {
                if (k.startsWith("conv1.") || k.startsWith("bn1.") || k.startsWith("layer1.")) {
                    assertEquals(before.get(k), live.get(k), k);
                }
            }
            assertNotEquals(before.get("layer2.0.conv1.weight"), live.get("layer2.0.conv1.weight"));
            try (Network back = Pretrained.load("resnet18", out, DataType.DOUBLE, Mode.EVAL)) {
                assertEquals(0.0, maxDifference(live, StateDict.of(back)));
            }
        }
    }

    @Test
    void theLinearScheduleDecaysPerEpochAndEachOptimizerHasItsWeightDecay() {
        for (FineTuning.OptimizerKind kind : FineTuning.OptimizerKind.values()) {
            Optimizer o = new FineTuning.Config(Mode.TUNE, 0, kind, 0.1, 1e-4, FineTuning.LrSchedule.LINEAR, 4)
                    .newOptimizer();
            for (int e = 0; e < 4; e++) {
                o.setEpoch(e);
                assertEquals(0.1 * (1 - e / 4.0), o.learningRate(), 1e-15, kind + " epoch " + e);
            }
            assertEquals(
                    kind == FineTuning.OptimizerKind.ADAM ? WeightDecay.class : L2Regularization.class,
                    o.regularization().get(0).getClass(),
                    kind.name());
        }
        Optimizer constant = config(Mode.TUNE, 0, 3).newOptimizer();
        assertThrows(
                IllegalArgumentException.class,
                () -> new FineTuning.Config(
                        Mode.TUNE, 0, FineTuning.OptimizerKind.SGD, 0, 0, FineTuning.LrSchedule.CONSTANT, 1));
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> FineTuning.Config.builder().learningRate(Double.NaN).build());
        assertTrue(e.getMessage().startsWith("learningRate: expected a finite value > 0, got NaN"), e.getMessage());
        assertTrue(constant.learningRate() > 0);
    }

    @Test
    void aCheckpointOfAnotherRunIsRefusedWithEveryDifferenceListed(@TempDir Path dir) throws IOException {
        Path checkpoint = dir.resolve("c.safetensors");
        FineTuning.Config made = FineTuning.Config.builder()
                .learningRate(0.003)
                .schedule(FineTuning.LrSchedule.LINEAR)
                .epochs(2)
                .data("seed", 1)
                .data("class_names", target.classes())
                .build();
        try (FineTuning job = FineTuning.start(fromPretrained(), made)) {
            job.checkpoint(checkpoint);
        }
        FineTuning.RunMismatchException m = assertThrows(
                FineTuning.RunMismatchException.class,
                () -> FineTuning.resume(
                        fromPretrained(),
                        FineTuning.Config.builder()
                                .mode(Mode.EVAL)
                                .learningRate(0.01)
                                .epochs(2)
                                .data("seed", 2)
                                .data("class_names", target.classes())
                                .build(),
                        checkpoint));
        assertEquals(
                List.of(
                        new FineTuning.Difference("mode", "TUNE", "EVAL"),
                        new FineTuning.Difference("learning_rate", "0.003", "0.01"),
                        new FineTuning.Difference("schedule", "LINEAR", "CONSTANT"),
                        new FineTuning.Difference("epochs", "2", null),
                        new FineTuning.Difference("seed", "1", "2")),
                m.differences());
        assertTrue(
                m.getMessage()
                        .startsWith("checkpoint " + checkpoint + ": made for another run: mode TUNE in the "
                                + "checkpoint, EVAL now; learning_rate 0.003 in the checkpoint, 0.01 now;"),
                m.getMessage());
        assertFalse(m.differences().get(0).overridable());
        assertTrue(m.differences().get(1).overridable());
        m = assertThrows(
                FineTuning.RunMismatchException.class,
                () -> FineTuning.resume(Zoo.create("mobilenet_v2", 5, DataType.DOUBLE, 1), made, checkpoint));
        assertTrue(m.getMessage().contains("model resnet18 in the checkpoint, mobilenet_v2 now"), m.getMessage());
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class, () -> FineTuning.start(fromPretrained(), config(Mode.TUNE, 6, 1)));
        assertTrue(
                e.getMessage()
                        .contains("frozenParts: expected 0..5 for resnet18 (of [conv1, layer1, layer2, "
                                + "layer3, layer4]), got 6"),
                e.getMessage());
    }

    @Test
    void anOverriddenSettingTakesTheNewValueAndTheNextCheckpointRecordsIt(@TempDir Path dir) throws IOException {
        Path checkpoint = dir.resolve("c.safetensors");
        FineTuning.Config made =
                FineTuning.Config.builder().learningRate(0.003).data("batch", 4).build();
        try (FineTuning job = FineTuning.start(fromPretrained(), made)) {
            job.checkpoint(checkpoint);
        }
        FineTuning.Config changed =
                FineTuning.Config.builder().learningRate(0.001).data("batch", 8).build();
        FineTuning.RunMismatchException m = assertThrows(
                FineTuning.RunMismatchException.class,
                () -> FineTuning.resume(fromPretrained(), changed, checkpoint, Set.of("learning_rate")));
        assertEquals(List.of(new FineTuning.Difference("batch", "4", "8")), m.differences());
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> FineTuning.resume(fromPretrained(), changed, checkpoint, Set.of("mode")));
        assertTrue(e.getMessage().startsWith("overridden: mode cannot be overridden"), e.getMessage());
        e = assertThrows(
                IllegalArgumentException.class,
                () -> FineTuning.resume(fromPretrained(), changed, checkpoint, Set.of("lr")));
        assertTrue(
                e.getMessage()
                        .startsWith(
                                "overridden: expected names of settings among [model, classes, "
                                        + "data_type, mode, frozen_parts, optimizer, learning_rate, weight_decay, schedule, batch], got lr"),
                e.getMessage());
        try (FineTuning job =
                FineTuning.resume(fromPretrained(), changed, checkpoint, Set.of("learning_rate", "batch"))) {
            assertEquals(
                    0.001,
                    job.runEpoch(batches(target.train(), target.classes(), true), null, (b, n, l) -> {})
                            .learningRate());
            assertEquals("0.001", job.settings().get("learning_rate"));
            job.checkpoint(checkpoint);
        }
        try (FineTuning job = FineTuning.resume(fromPretrained(), changed, checkpoint)) {
            assertEquals(1, job.epochsDone());
        }
    }

    @Test
    void weightsThatDoNotFitTheModelAreListed(@TempDir Path dir) throws IOException {
        Map<String, INDArray> tensors =
                new LinkedHashMap<>(Safetensors.read(pretrained).tensors());
        tensors.remove("layer1.0.bn1.running_var");
        tensors.put("layer9.extra", tensors.get("fc.bias"));
        tensors.put(
                "layer1.0.conv1.weight", tensors.get("layer1.0.conv1.weight").reshape(64, 64, 9));
        Path bad = dir.resolve("bad.safetensors");
        Safetensors.write(bad, tensors, Map.of());
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class, () -> Pretrained.load("resnet18", bad, DataType.DOUBLE, Mode.EVAL));
        assertTrue(e.getMessage().contains("missing [layer1.0.bn1.running_var]"), e.getMessage());
        assertTrue(e.getMessage().contains("unexpected [layer9.extra]"), e.getMessage());
        assertTrue(
                e.getMessage().contains("layer1.0.conv1.weight (expected [64, 64, 3, 3], got [64, 64, 9])"),
                e.getMessage());
        e = assertThrows(
                IllegalArgumentException.class,
                () -> Pretrained.load("resnet34", pretrained, DataType.DOUBLE, Mode.EVAL));
        assertTrue(
                e.getMessage().contains("do not fit resnet34") && e.getMessage().contains("layer1.2.conv1.weight"),
                e.getMessage());
        e = assertThrows(
                IllegalArgumentException.class,
                () -> Pretrained.load("resnet19", pretrained, DataType.DOUBLE, Mode.EVAL));
        assertTrue(e.getMessage().contains("model: expected one of [resnet18, resnet34"), e.getMessage());
    }

    @Test
    void aFolderWithoutClassFoldersOrWithCorruptImagesIsReportedClearly(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("loose.png"), "not an image");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ImageFolder.scan(dir, 0, 1));
        assertTrue(e.getMessage().contains("expected one subfolder per class (at least 2)"), e.getMessage());

        Path tree = TestImages.write(dir.resolve("tree"), List.of(0, 1), 4);
        Path broken = tree.resolve("1-Trouser/broken.png");
        Files.write(broken, new byte[] {1, 2, 3});
        // a header that reads but data that does not: a PNG cut in half, a JPEG cut short
        Path[] images;
        try (var files = Files.list(tree.resolve("0-T-shirt_top"))) {
            images = files.sorted().limit(2).toArray(Path[]::new);
        }
        byte[] png = Files.readAllBytes(images[0]);
        Files.write(images[0], Arrays.copyOf(png, png.length / 2));
        Path jpeg = images[1].resolveSibling("cut.jpg");
        ImageIO.write(ImageIO.read(images[1].toFile()), "jpg", jpeg.toFile());
        byte[] jpg = Files.readAllBytes(jpeg);
        Files.write(jpeg, Arrays.copyOf(jpg, jpg.length * 2 / 3));
        ImageFolder f = ImageFolder.scan(tree, 0, 1);
        assertEquals(7, f.train().size(), "8 images and a JPEG written, 2 damaged");
        assertEquals(3, f.skipped().size(), f.skipped().toString());
        assertTrue(
                f.skipped().stream().anyMatch(s -> s.startsWith(broken + ": not a JPEG or PNG image")),
                f.skipped().toString());
        assertTrue(
                f.skipped().stream().anyMatch(s -> s.startsWith(images[0] + ": ")),
                f.skipped().toString());
        assertTrue(
                f.skipped().stream().anyMatch(s -> s.startsWith(jpeg + ": ")),
                f.skipped().toString());

        Path empty = dir.resolve("empty");
        Files.createDirectories(empty.resolve("a"));
        Files.createDirectories(empty.resolve("b"));
        Files.write(empty.resolve("a/x.jpg"), new byte[] {9});
        e = assertThrows(IllegalArgumentException.class, () -> ImageFolder.scan(empty, 0, 1));
        assertTrue(e.getMessage().contains("has no readable JPEG or PNG image"), e.getMessage());
    }
}
