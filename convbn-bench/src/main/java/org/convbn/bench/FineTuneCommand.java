package org.convbn.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import org.convbn.core.Mode;
import org.convbn.core.Precision;
import org.convbn.io.AtomicFiles;
import org.convbn.net.Network;
import org.convbn.net.Zoo;
import org.convbn.train.InMemoryDataset;
import org.convbn.train.data.FashionMnist;
import org.convbn.transfer.EpochBatches;
import org.convbn.transfer.FineTuning;
import org.convbn.transfer.IdxBatches;
import org.convbn.transfer.ImageBatches;
import org.convbn.transfer.ImageFolder;
import org.convbn.transfer.Pretrained;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The transfer-learning job: a network of the zoo with torchvision weights from safetensors (or from scratch), the
 * user's images (class folders, or Fashion-MNIST's IDX files), a new head, a frozen prefix, fine-tuning in the chosen
 * mode with validation each epoch, a checkpoint each epoch and {@code --resume}, the tuned weights out in torchvision
 * names (and folded), and the learning curve as JSON and PNG.
 */
@Command(
        name = "finetune",
        description =
                "Fine-tune a network of the zoo on a folder of class folders (or IDX files): "
                        + "torchvision weights in, a frozen prefix, the chosen mode, checkpoints and resume, tuned weights out.",
        mixinStandardHelpOptions = true,
        sortOptions = false)
final class FineTuneCommand implements Callable<Integer> {
    /** The element types. */
    enum ElementType {
        FLOAT(DataType.FLOAT),
        DOUBLE(DataType.DOUBLE);

        final DataType type;

        ElementType(DataType type) {
            this.type = type;
        }
    }

    /** The exit code of a run stopped by a signal before its end (SIGINT's 128 + 2). */
    static final int STOPPED = 130;
    /** How long a signal waits for the current step (and a checkpoint being written) to finish. */
    static final int STOP_WAIT_SECONDS = 300;

    /** The name of the checkpoint file in --checkpoint-dir. */
    static final String CHECKPOINT = "checkpoint.safetensors";

    @Option(
            names = "--weights",
            description = "torchvision weights (safetensors of model.state_dict()); without it "
                    + "the network starts from PyTorch's initialisation")
    Path weights;

    @Option(
            names = "--model",
            description = "a torchvision model name: ${COMPLETION-CANDIDATES} (default: " + "${DEFAULT-VALUE})",
            completionCandidates = ZooNames.class)
    String model = "resnet18";

    @Option(
            names = "--data",
            required = true,
            description = "a folder with one subfolder of JPEG/PNG images per "
                    + "class, or a folder of Fashion-MNIST IDX files")
    Path data;

    @Option(names = "--mode", description = "train, eval, tune or deploy (default: ${DEFAULT-VALUE})")
    Mode mode = Mode.TUNE;

    @Option(
            names = "--frozen-parts",
            description = "frozen leading parts of the network: 0 none, 1 the stem, then "
                    + "its stages in order (a ResNet's conv1, layer1..layer4; features.0..features.N of the others); all of "
                    + "them leave only the classifier to train (default: ${DEFAULT-VALUE})")
    int frozenParts = 0;

    @Option(names = "--epochs", description = "epochs in all (default: ${DEFAULT-VALUE})")
    int epochs = 5;

    /** The resolution of image folders; IDX data keeps its own. */
    @Mixin
    InputShape shape = new InputShape(32);

    @Option(names = "--optimizer", description = "sgd, nesterov or adam (default: ${DEFAULT-VALUE})")
    FineTuning.OptimizerKind optimizer = FineTuning.OptimizerKind.NESTEROV;

    @Option(names = "--lr", description = "learning rate (default: ${DEFAULT-VALUE})")
    double learningRate = 0.01;

    @Option(names = "--schedule", description = "constant or linear (decay per epoch) (default: ${DEFAULT-VALUE})")
    FineTuning.LrSchedule schedule = FineTuning.LrSchedule.CONSTANT;

    @Option(
            names = "--weight-decay",
            description = "coupled (sgd, nesterov) or decoupled (adam: AdamW) " + "(default: ${DEFAULT-VALUE})")
    double weightDecay = 1e-4;

    @Option(
            names = "--validation",
            description = "fraction of each class held out for validation, 0 for none " + "(default: ${DEFAULT-VALUE})")
    double validationFraction = 0.2;

    @Option(
            names = "--seed",
            description =
                    "seed of the split, the head, the order and the augmentation " + "(default: ${DEFAULT-VALUE})")
    long seed = 1;

    @Option(names = "--keep-head", description = "keep the weights' classifier (its size must match the classes)")
    boolean keepHead;

    @Option(names = "--dtype", description = "float or double (default: ${DEFAULT-VALUE})")
    ElementType dtype = ElementType.FLOAT;

    @Option(
            names = "--precision",
            description = "how feature maps are stored: FULL (in --dtype), BF16_EMULATED (bfloat16 maps, float32 "
                    + "parameters, computed in float32 kernels) or BF16_MIXED (native bfloat16 kernels: refused where there "
                    + "are none); not part of a checkpoint's settings: a run may resume in another (default: "
                    + "${DEFAULT-VALUE})")
    Precision precision = Precision.FULL;

    @Option(names = "--out", description = "the tuned weights, torchvision names (default: ${DEFAULT-VALUE})")
    Path out = Path.of("tuned.safetensors");

    @Option(names = "--export-folded", description = "also write the weights with BN folded into the convs here")
    Path exportFolded;

    @Option(names = "--checkpoint-dir", description = "write " + CHECKPOINT + " here after every epoch")
    Path checkpointDir;

    @Option(names = "--resume", description = "continue from --checkpoint-dir's checkpoint")
    boolean resume;

    @Option(
            names = "--override",
            split = ",",
            paramLabel = "SETTING",
            description = "with --resume: settings "
                    + "changed on purpose from the checkpoint's (any of ${COMPLETION-CANDIDATES}; classes and split when the "
                    + "data's folders or files changed); without it a resume refuses every difference",
            completionCandidates = Overridable.class)
    Set<String> overrides = new LinkedHashSet<>();

    @Option(names = "--curve", description = "learning curve JSON (default: ${DEFAULT-VALUE})")
    Path curve = Path.of("finetune.json");

    @Option(names = "--chart", description = "learning curve PNG (default: ${DEFAULT-VALUE})")
    Path chart = Path.of("finetune.png");

    @Option(names = "--quiet", description = "no progress bar (the per-epoch lines stay)")
    boolean quiet;

    /**
     * What the run's settings ({@link FineTuning#settings()}) are called here: the option that sets each, and the
     * name {@code --override} takes (null for those a resume cannot change).
     */
    enum Setting {
        MODEL("model", "--model", null),
        CLASSES("classes", "the number of classes", null),
        DATA_TYPE("data_type", "--dtype", null),
        MODE("mode", "--mode", null),
        FROZEN_PARTS("frozen_parts", "--frozen-parts", null),
        OPTIMIZER("optimizer", "--optimizer", null),
        LEARNING_RATE("learning_rate", "--lr", "lr"),
        WEIGHT_DECAY("weight_decay", "--weight-decay", "weight-decay"),
        SCHEDULE("schedule", "--schedule", "schedule"),
        EPOCHS("epochs", "--epochs", "epochs"),
        CLASS_NAMES("class_names", "the class names", "classes"),
        SEED("seed", "--seed", "seed"),
        VALIDATION("validation", "--validation", "validation"),
        SPLIT("split", "the split (the data's training and validation files)", "split"),
        RESOLUTION("resolution", "--resolution", "resolution"),
        BATCH("batch", "--batch", "batch");

        final String setting;
        final String shown;
        final String override;

        Setting(String setting, String shown, String override) {
            this.setting = setting;
            this.shown = shown;
            this.override = override;
        }

        /** @return the option that sets it, or null for a setting this command does not make */
        static Setting of(String setting) {
            for (Setting s : values()) {
                if (s.setting.equals(setting)) {
                    return s;
                }
            }
            return null;
        }

        static Setting byOverride(String name) {
            for (Setting s : values()) {
                if (name.equals(s.override)) {
                    return s;
                }
            }
            throw new IllegalArgumentException("--override: expected some of " + new Overridable() + ", got " + name);
        }
    }

    /** The names {@code --override} takes. */
    static final class Overridable extends ArrayList<String> {
        private static final long serialVersionUID = 1L;

        Overridable() {
            for (Setting s : Setting.values()) {
                if (s.override != null) {
                    add(s.override);
                }
            }
        }
    }

    /** One epoch of the learning curve; the validation numbers are null without validation. */
    record Point(
            int epoch,
            double trainLoss,
            Double validationLoss,
            Double validationAccuracy,
            double trainSeconds,
            double imagesPerSecond,
            double learningRate,
            double retainedMib,
            double arenaPeakMib,
            Double peakResidentMib) {}

    /** What {@code --curve} holds. */
    record Curve(
            String model,
            String mode,
            int frozenParts,
            String optimizer,
            double learningRate,
            double weightDecay,
            int batch,
            int resolution,
            List<String> classes,
            int trainImages,
            int validationImages,
            int skippedImages,
            String weights,
            List<Point> epochs) {}

    /**
     * The data sources, the unreadable files left out, the resolution the batches have, and the split's identity (a
     * digest of which examples train and which validate).
     */
    private record Data(EpochBatches train, EpochBatches validation, int skipped, int resolution, String split) {
        List<String> classes() {
            return train.getLabels();
        }

        int trainImages() {
            return train.size();
        }

        int validationImages() {
            return validation == null ? 0 : validation.size();
        }
    }

    @Override
    public Integer call() throws Exception {
        validate();
        Path checkpoint = checkpointDir == null ? null : checkpointDir.resolve(CHECKPOINT);
        Map<String, Path> outputs = new LinkedHashMap<>();
        outputs.put("--out", out);
        outputs.put("--curve", curve);
        outputs.put("--chart", chart);
        outputs.put("--export-folded", exportFolded);
        outputs.put("--checkpoint-dir", checkpoint);
        int stale = 0;
        for (Map.Entry<String, Path> o : outputs.entrySet()) {
            if (o.getValue() != null) {
                AtomicFiles.checkWritable(o.getValue(), o.getKey());
                stale += AtomicFiles.removeStaleTemporaries(o.getValue());
            }
        }
        if (stale > 0) {
            System.out.println("removed " + stale + " temporary files an interrupted run left beside the outputs");
        }
        Chart.prepare();
        Nd4j.getMemoryManager().togglePeriodicGc(false);
        Data d = load();
        System.out.printf(
                Locale.ROOT,
                "data %s: %d classes, %d training and %d validation images%s; %s at %dx%d%n",
                data,
                d.classes().size(),
                d.trainImages(),
                d.validationImages(),
                d.skipped() == 0 ? "" : ", " + d.skipped() + " unreadable files skipped",
                model,
                d.resolution(),
                d.resolution());
        Network net = network(d.classes().size());
        FineTuning.Config config;
        try {
            config = FineTuning.Config.builder()
                    .mode(mode)
                    .frozenParts(frozenParts)
                    .optimizer(optimizer)
                    .learningRate(learningRate)
                    .weightDecay(weightDecay)
                    .schedule(schedule)
                    .epochs(epochs)
                    .data(Setting.CLASS_NAMES.setting, Json.MAPPER.writeValueAsString(d.classes()))
                    .data(Setting.SEED.setting, seed)
                    .data(Setting.VALIDATION.setting, validationFraction)
                    .data(Setting.SPLIT.setting, d.split())
                    .data(Setting.RESOLUTION.setting, d.resolution())
                    .data(Setting.BATCH.setting, shape.batch)
                    .build();
        } catch (IllegalArgumentException e) {
            net.close();
            throw e;
        }
        Map<Integer, Double> peaks = new HashMap<>();
        try (FineTuning job = resume ? resume(net, config, checkpoint) : FineTuning.start(net, config);
                StopOnSignal stop = new StopOnSignal(job)) {
            if (resume) {
                System.out.printf(
                        Locale.ROOT,
                        "resumed from %s after epoch %d%s%n",
                        checkpoint,
                        job.epochsDone(),
                        overrides.isEmpty() ? "" : ", with " + overrides + " as given now");
            }
            try {
                train(job, d, checkpoint, peaks);
            } catch (CancellationException e) {
                System.out.println("stopped: " + e.getMessage()
                        + (checkpoint == null
                                ? ""
                                : job.epochsDone() == 0
                                        ? "; no checkpoint was written yet"
                                        : "; the last checkpoint, " + checkpoint + ", holds epoch " + job.epochsDone()
                                                + " (--resume continues from it)"));
                return STOPPED;
            }
        }
        return 0;
    }

    /**
     * Resumes with the settings {@code --override} names taken as given; a checkpoint of another run is refused
     * with each difference under its option's name.
     */
    private FineTuning resume(Network net, FineTuning.Config config, Path checkpoint) throws IOException {
        Set<String> overridden = new LinkedHashSet<>();
        for (String o : overrides) {
            overridden.add(Setting.byOverride(o).setting);
        }
        try {
            return FineTuning.resume(net, config, checkpoint, overridden);
        } catch (FineTuning.RunMismatchException e) {
            List<String> lines = new ArrayList<>();
            List<String> changeable = new ArrayList<>();
            for (FineTuning.Difference x : e.differences()) {
                Setting s = Setting.of(x.setting());
                String shown = s == null ? x.setting() + " (not a setting of this command)" : s.shown;
                lines.add(shown + " " + (x.recorded() == null ? "none" : x.recorded()) + " in the checkpoint, "
                        + (x.requested() == null ? "none" : x.requested()) + " now"
                        + (s != null && s.override == null ? " (cannot change on resume)" : ""));
                if (s != null && s.override != null) {
                    changeable.add(s.override);
                }
            }
            throw new IllegalArgumentException(
                    "--resume: the checkpoint " + checkpoint + " was made for another run: "
                            + String.join("; ", lines)
                            + (changeable.size() < lines.size()
                                    ? ""
                                    : "; to continue with the " + "values given now: --override "
                                            + String.join(",", changeable)),
                    e);
        }
    }

    /**
     * Asks a run to stop after its current step when the JVM is asked to end (SIGTERM, SIGINT), and holds the JVM's
     * shutdown until the run has stopped (at most {@value #STOP_WAIT_SECONDS} s), so that the last checkpoint is whole
     * and no temporary file stays.
     */
    private static final class StopOnSignal implements AutoCloseable {
        private final CountDownLatch stopped = new CountDownLatch(1);
        private final Thread hook;

        StopOnSignal(FineTuning job) {
            hook = new Thread(
                    () -> {
                        job.requestStop();
                        System.err.println("finetune: asked to end; stopping after the current step");
                        try {
                            stopped.await(STOP_WAIT_SECONDS, TimeUnit.SECONDS);
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    },
                    "finetune-stop");
            Runtime.getRuntime().addShutdownHook(hook);
        }

        @Override
        public void close() {
            stopped.countDown();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running: it returns now that the run is done
            }
        }
    }

    /** Runs the remaining epochs with a checkpoint and the curve after each, then writes the outputs. */
    private void train(FineTuning job, Data d, Path checkpoint, Map<Integer, Double> peaks) throws IOException {
        for (int e = job.epochsDone(); e < epochs; e++) {
            MemoryProbe.resetHighWater();
            FineTuning.Epoch r;
            try (ProgressBar bar = quiet ? null : bar(e, d)) {
                r = job.runEpoch(d.train(), d.validation(), (i, n, loss) -> {
                    if (bar != null) {
                        bar.stepBy(n);
                        bar.setExtraMessage(String.format(
                                Locale.ROOT, " loss %.3f, peak %d MiB", loss, MemoryProbe.highWaterBytes() >> 20));
                    }
                });
            }
            double peak = MemoryProbe.highWaterBytes() / (double) (1 << 20);
            peaks.put(r.epoch(), peak);
            System.out.printf(Locale.ROOT, "%s, peak RSS %.0f MiB%n", FineTuning.describe(r), peak);
            if (checkpoint != null) {
                job.checkpoint(checkpoint);
            }
            writeCurve(job, d, peaks);
            // ND4J frees an array's native buffer when the Java object is collected, and the JVM grows its heap
            // toward -Xmx before collecting: a collection at each epoch's end frees what the epoch's garbage held
            // and gives the heap back, so every epoch peaks where the first did (not cumulative).
            Nd4j.getMemoryManager().invokeGc();
        }
        job.exportWeights(out);
        System.out.println("wrote " + out + " (torchvision names)");
        if (exportFolded != null) {
            job.exportFolded(exportFolded);
            System.out.println("wrote " + exportFolded + " (BN folded into the convs)");
        }
        writeCurve(job, d, peaks);
        System.out.println("wrote " + curve + " and " + chart);
    }

    private void validate() {
        if (epochs < 1) {
            throw new IllegalArgumentException("--epochs: expected >= 1, got " + epochs);
        }
        shape.validate();
        if (!Zoo.contains(model)) {
            throw new IllegalArgumentException("--model: expected one of " + Zoo.names() + ", got " + model);
        }
        if (frozenParts < 0) {
            throw new IllegalArgumentException("--frozen-parts: expected >= 0, got " + frozenParts);
        }
        if (!(validationFraction >= 0 && validationFraction < 1)) {
            throw new IllegalArgumentException(
                    "--validation: expected a fraction in [0, 1), got " + validationFraction);
        }
        if (!resume && !overrides.isEmpty()) {
            throw new IllegalArgumentException("--override: expected with --resume, got " + overrides);
        }
        overrides.forEach(Setting::byOverride);
        if (resume && checkpointDir == null) {
            throw new IllegalArgumentException("--resume: expected --checkpoint-dir to resume from, got none");
        }
        if (resume && !Files.isRegularFile(checkpointDir.resolve(CHECKPOINT))) {
            throw new IllegalArgumentException(
                    "--resume: expected a checkpoint at " + checkpointDir.resolve(CHECKPOINT) + ", got none");
        }
        if (weights != null && !Files.isRegularFile(weights)) {
            throw new IllegalArgumentException("--weights: expected a safetensors file, got none at " + weights);
        }
    }

    private Data load() throws IOException {
        if (!Files.isDirectory(data)) {
            throw new IllegalArgumentException(
                    "--data: expected a folder, got " + (Files.exists(data) ? "a file " : "no such folder ") + data);
        }
        if (isIdx(data)) {
            InMemoryDataset all = InMemoryDataset.of(FashionMnist.read(data, true), Integer.MAX_VALUE, 3, dtype.type);
            int[][] split = IdxBatches.split(all.size(), validationFraction, seed);
            requireTrainingBatch(split[0].length);
            IdxBatches train = new IdxBatches(all, split[0], FashionMnist.CLASSES, shape.batch, true, seed);
            IdxBatches val = split[1].length == 0
                    ? null
                    : new IdxBatches(all, split[1], FashionMnist.CLASSES, shape.batch, false, seed);
            return new Data(
                    train,
                    val,
                    0,
                    (int) all.images().size(2),
                    digest(Arrays.toString(split[0]) + "|" + Arrays.toString(split[1])));
        }
        ImageFolder folder = ImageFolder.scan(data, validationFraction, seed);
        System.out.print(skippedSummary(folder.skipped()));
        requireTrainingBatch(folder.train().size());
        ImageBatches train = ImageBatches.builder(folder.train(), folder.classes())
                .resolution(shape.resolution)
                .batch(shape.batch)
                .seed(seed)
                .dataType(dtype.type)
                .build();
        ImageBatches val = folder.validation().isEmpty()
                ? null
                : ImageBatches.builder(folder.validation(), folder.classes())
                        .resolution(shape.resolution)
                        .batch(shape.batch)
                        .training(false)
                        .seed(seed)
                        .dataType(dtype.type)
                        .build();
        return new Data(
                train,
                val,
                folder.skipped().size(),
                shape.resolution,
                digest(examples(folder.train()) + "|" + examples(folder.validation())));
    }

    /** @return each example's path below {@code --data} and label, in order */
    private String examples(List<ImageFolder.Example> examples) {
        StringBuilder b = new StringBuilder();
        for (ImageFolder.Example e : examples) {
            b.append(data.relativize(e.file())).append('=').append(e.label()).append('\n');
        }
        return b.toString();
    }

    /** @return the SHA-256 of the text, in hex */
    private static String digest(String text) {
        try {
            return HexFormat.of()
                    .formatHex(MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-256", e);
        }
    }

    /** The files the summary names one by one; the rest are counted. */
    static final int SKIPPED_NAMED = 10;

    /** @return the lines naming the skipped files with why (the first {@value #SKIPPED_NAMED}, then a count) */
    static String skippedSummary(List<String> skipped) {
        if (skipped.isEmpty()) {
            return "";
        }
        StringBuilder b = new StringBuilder("skipped " + skipped.size() + " unreadable image files:\n");
        skipped.stream()
                .limit(SKIPPED_NAMED)
                .forEach(s -> b.append("  ").append(s).append('\n'));
        if (skipped.size() > SKIPPED_NAMED) {
            b.append("  and ").append(skipped.size() - SKIPPED_NAMED).append(" more\n");
        }
        return b.toString();
    }

    /** @throws IllegalArgumentException naming --validation and --batch when the split leaves no training batch */
    private void requireTrainingBatch(int trainImages) {
        if (trainImages < shape.batch) {
            throw new IllegalArgumentException("--validation " + validationFraction + " leaves " + trainImages
                    + " training images, expected at least --batch " + shape.batch);
        }
    }

    private static boolean isIdx(Path dir) {
        return Files.exists(dir.resolve("train-images-idx3-ubyte"))
                || Files.exists(dir.resolve("train-images-idx3-ubyte.gz"));
    }

    private Network network(int classes) throws IOException {
        if (weights == null) {
            if (keepHead) {
                throw new IllegalArgumentException("--keep-head: expected --weights with a head to keep, got none");
            }
            return withTrainingRegularisation(Zoo.create(model, classes, dtype.type, precision, seed));
        }
        Network net = withTrainingRegularisation(Pretrained.load(model, weights, dtype.type, precision, Mode.EVAL));
        if (keepHead && net.classes() != classes) {
            net.close();
            throw new IllegalArgumentException("--keep-head: the weights' head predicts " + net.classes()
                    + " classes, expected the data's " + classes);
        }
        if (!keepHead) {
            net.replaceHead(classes, seed);
        }
        return net;
    }

    /** Dropout and stochastic depth on while training, as PyTorch's {@code train()} has them. */
    private static Network withTrainingRegularisation(Network net) {
        net.setStochastic(true);
        return net;
    }

    private ProgressBar bar(int epoch, Data d) {
        return new ProgressBarBuilder()
                .setTaskName(String.format(Locale.ROOT, "epoch %d/%d", epoch + 1, epochs))
                .setInitialMax((long) d.train().batchesPerEpoch() * shape.batch)
                .setUnit(" img", 1)
                .showSpeed()
                .setStyle(ProgressBarStyle.ASCII)
                .setMaxRenderedLength(120)
                .setUpdateIntervalMillis(500)
                .build();
    }

    private static Double finiteOrNull(double v) {
        return Double.isNaN(v) ? null : v;
    }

    private void writeCurve(FineTuning job, Data d, Map<Integer, Double> peaks) throws IOException {
        List<Point> points = new ArrayList<>();
        for (FineTuning.Epoch e : job.history()) {
            points.add(new Point(
                    e.epoch(),
                    e.trainLoss(),
                    finiteOrNull(e.validationLoss()),
                    finiteOrNull(e.validationAccuracy()),
                    e.trainSeconds(),
                    e.imagesPerSecond(),
                    e.learningRate(),
                    e.retainedBytes() / (double) (1 << 20),
                    e.arenaPeakBytes() / (double) (1 << 20),
                    peaks.get(e.epoch())));
        }
        Curve c = new Curve(
                model,
                mode.name(),
                frozenParts,
                optimizer.name(),
                learningRate,
                weightDecay,
                shape.batch,
                d.resolution(),
                d.classes(),
                d.trainImages(),
                d.validationImages(),
                d.skipped(),
                weights == null ? null : weights.toString(),
                points);
        Json.writeAtomically(curve, c);
        XYChart x = new XYChartBuilder()
                .width(800)
                .height(450)
                .title(String.format(
                        Locale.ROOT,
                        "%s %s, %d frozen, %s lr %.3g",
                        model,
                        mode,
                        frozenParts,
                        optimizer.name().toLowerCase(Locale.ROOT),
                        learningRate))
                .xAxisTitle("epoch")
                .yAxisTitle("loss / accuracy")
                .build();
        List<Double> ep = new ArrayList<>();
        List<Double> trainLoss = new ArrayList<>();
        List<Double> valLoss = new ArrayList<>();
        List<Double> valAcc = new ArrayList<>();
        for (Point p : points) {
            ep.add((double) p.epoch());
            trainLoss.add(p.trainLoss());
            valLoss.add(p.validationLoss() == null ? 0 : p.validationLoss());
            valAcc.add(p.validationAccuracy() == null ? 0 : p.validationAccuracy());
        }
        x.addSeries("training loss", ep, trainLoss);
        if (d.validation() != null) {
            x.addSeries("validation loss", ep, valLoss);
            x.addSeries("validation accuracy", ep, valAcc);
        }
        Chart.write(chart, x);
    }
}
