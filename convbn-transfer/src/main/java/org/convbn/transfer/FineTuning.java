package org.convbn.transfer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CancellationException;
import java.util.stream.Collectors;
import net.jcip.annotations.Immutable;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.Mode;
import org.convbn.io.Safetensors;
import org.convbn.nd4j.Optimizer;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.net.Network;
import org.convbn.net.SoftmaxCrossEntropy;
import org.convbn.net.StateDict;
import org.convbn.train.TrainingStep;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.dataset.api.iterator.DataSetIterator;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.learning.config.Nesterovs;
import org.nd4j.linalg.learning.config.Sgd;
import org.nd4j.linalg.learning.regularization.L2Regularization;
import org.nd4j.linalg.learning.regularization.Regularization;
import org.nd4j.linalg.learning.regularization.WeightDecay;
import org.nd4j.linalg.schedule.ISchedule;
import org.nd4j.linalg.schedule.MapSchedule;
import org.nd4j.linalg.schedule.ScheduleType;

/**
 * A fine-tuning run of any {@link Network}: the network in the chosen mode with a prefix of its
 * {@link Network#freezableParts() parts} frozen, one of ND4J's updaters with weight decay, an epoch at a time over a
 * {@link DataSetIterator} with validation after each, and a checkpoint that a later process resumes from exactly
 * (same parameters, same optimiser state, same data order when the data is {@link EpochAware}).
 *
 * <p>Usage:
 * <pre>{@code
 * Network net = Pretrained.load("mobilenet_v2", Path.of("mobilenet_v2.safetensors"), DataType.FLOAT, Mode.EVAL);
 * net.replaceHead(folder.classes().size(), 1);
 * FineTuning.Config config = FineTuning.Config.builder().mode(Mode.TUNE).frozenParts(2).epochs(5).build();
 * try (FineTuning job = FineTuning.start(net, config)) {
 *     for (int e = 0; e < config.epochs(); e++) {
 *         FineTuning.Epoch epoch = job.runEpoch(train, validation, (batch, images, loss) -> { });
 *         System.out.println(FineTuning.describe(epoch));
 *         job.checkpoint(Path.of("ckpt/checkpoint.safetensors"));
 *     }
 *     job.exportWeights(Path.of("tuned.safetensors"));
 * }
 * }</pre>
 * Training draws dropout and stochastic depth when the network has them on ({@link Network#setStochastic}: off in
 * a network from the {@code Zoo}, on for PyTorch's {@code train()}), from a generator reseeded every epoch, so a
 * resumed run draws what the uninterrupted one drew; evaluation draws none. Not thread-safe; the run owns the network
 * and closes it.
 */
@NotThreadSafe
public final class FineTuning implements AutoCloseable {
    /** The format tag in a checkpoint's metadata. */
    public static final String CHECKPOINT_FORMAT = "convbn-finetune-checkpoint/3";
    /**
     * The settings a resume cannot take another value of, whatever is overridden: the checkpoint's tensors are
     * those of this network, head, element type, mode, frozen prefix and update rule.
     */
    public static final Set<String> FIXED_SETTINGS =
            Set.of("model", "classes", "data_type", "mode", "frozen_parts", "optimizer");

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String MODEL_PREFIX = "model/";
    private static final double MIB = 1 << 20;
    private static final String OPTIMIZER_PREFIX = "optimizer/";
    /** The dropout and stochastic depth draws of epoch e come from seed DRAW_SEED + e. */
    private static final long DRAW_SEED = 0x51EED5L;

    /** The update rules the run offers, each with its weight decay as PyTorch applies it. */
    public enum OptimizerKind {
        /** SGD, coupled weight decay (PyTorch {@code SGD(weight_decay)}): ND4J Sgd + L2Regularization. */
        SGD,
        /** SGD with Nesterov momentum 0.9, coupled weight decay: ND4J Nesterovs + L2Regularization. */
        NESTEROV,
        /** Adam with decoupled weight decay (PyTorch {@code AdamW}): ND4J Adam + WeightDecay. */
        ADAM
    }

    /** How the learning rate moves over the epochs. */
    public enum LrSchedule {
        /** The same every epoch. */
        CONSTANT,
        /**
         * Linear decay per epoch, {@code lr * (1 - epoch / epochs)}, as an ND4J MapSchedule (ND4J's PolySchedule
         * computes {@code lr * (1 + i / maxIter)^power}, which is not this decay for any power).
         */
        LINEAR
    }

    /**
     * What a run is; a checkpoint records it and a resume must match it.
     *
     * @param mode the mode of the trainable blocks
     * @param frozenParts frozen leading parts of the network, see {@link Network#setFrozenParts}
     * @param optimizer the update rule
     * @param learningRate the initial learning rate, &gt; 0
     * @param weightDecay &gt;= 0
     * @param schedule the learning-rate schedule
     * @param epochs the planned number of epochs (the schedule's length), &gt;= 1
     * @param data what defines the data the run trains on, as the caller names it (class names, the split's seed,
     *             fraction and identity, resolution, batch, ...): recorded in every checkpoint and compared on resume
     *             like the other settings; its names must not be those of {@link #settings()}'s own entries. Copied.
     */
    @Immutable
    public record Config(
            Mode mode,
            int frozenParts,
            OptimizerKind optimizer,
            double learningRate,
            double weightDecay,
            LrSchedule schedule,
            int epochs,
            Map<String, String> data) {
        /** The names {@link #settings()} gives the configuration's own entries. */
        private static final Set<String> OWN =
                Set.of("mode", "frozen_parts", "optimizer", "learning_rate", "weight_decay", "schedule", "epochs");

        public Config {
            Objects.requireNonNull(mode, "mode");
            Objects.requireNonNull(optimizer, "optimizer");
            Objects.requireNonNull(schedule, "schedule");
            Objects.requireNonNull(data, "data");
            for (Map.Entry<String, String> d : data.entrySet()) {
                if (OWN.contains(d.getKey()) || FIXED_SETTINGS.contains(d.getKey())) {
                    throw new IllegalArgumentException("data: expected names other than the run's own settings "
                            + new TreeSet<>(OWN) + " and " + new TreeSet<>(FIXED_SETTINGS) + ", got " + d.getKey());
                }
                Objects.requireNonNull(d.getValue(), "data value of " + d.getKey());
            }
            data = Collections.unmodifiableMap(new LinkedHashMap<>(data));
            if (frozenParts < 0) {
                throw new IllegalArgumentException("frozenParts: expected >= 0, got " + frozenParts);
            }
            if (!(learningRate > 0) || !Double.isFinite(learningRate)) {
                throw new IllegalArgumentException("learningRate: expected a finite value > 0, got " + learningRate);
            }
            if (!(weightDecay >= 0) || !Double.isFinite(weightDecay)) {
                throw new IllegalArgumentException("weightDecay: expected a finite value >= 0, got " + weightDecay);
            }
            if (epochs < 1) {
                throw new IllegalArgumentException("epochs: expected >= 1, got " + epochs);
            }
        }

        /** A configuration that records nothing about its data. */
        public Config(
                Mode mode,
                int frozenParts,
                OptimizerKind optimizer,
                double learningRate,
                double weightDecay,
                LrSchedule schedule,
                int epochs) {
            this(mode, frozenParts, optimizer, learningRate, weightDecay, schedule, epochs, Map.of());
        }

        /**
         * @return what a checkpoint records of this configuration, by name: mode, frozen_parts, optimizer,
         *         learning_rate, weight_decay, schedule, epochs (only for the linear schedule, whose rates depend on
         *         it: a constant-rate run may be extended), then {@link #data()}
         */
        public Map<String, String> settings() {
            Map<String, String> s = new LinkedHashMap<>();
            s.put("mode", mode.name());
            s.put("frozen_parts", Integer.toString(frozenParts));
            s.put("optimizer", optimizer.name());
            s.put("learning_rate", Double.toString(learningRate));
            s.put("weight_decay", Double.toString(weightDecay));
            s.put("schedule", schedule.name());
            if (schedule == LrSchedule.LINEAR) {
                s.put("epochs", Integer.toString(epochs));
            }
            s.putAll(data);
            return s;
        }

        /**
         * @return a builder starting from TUNE, nothing frozen, Nesterov SGD, learning rate 0.01, weight decay 1e-4,
         *         constant schedule, 5 epochs
         */
        public static Builder builder() {
            return new Builder();
        }

        /** The settings of a {@link Config}, checked in {@link #build()}. */
        @NotThreadSafe
        public static final class Builder {
            private Mode mode = Mode.TUNE;
            private int frozenParts;
            private OptimizerKind optimizer = OptimizerKind.NESTEROV;
            private double learningRate = 0.01;
            private double weightDecay = 1e-4;
            private LrSchedule schedule = LrSchedule.CONSTANT;
            private int epochs = 5;
            private final Map<String, String> data = new LinkedHashMap<>();

            private Builder() {}

            /**
             * @param name a setting of the data the run trains on (not one of the configuration's own names)
             * @param value its value, compared as text on resume
             */
            public Builder data(String name, Object value) {
                data.put(Objects.requireNonNull(name, "name"), String.valueOf(Objects.requireNonNull(value, name)));
                return this;
            }

            /** @param mode the mode of the trainable blocks */
            public Builder mode(Mode mode) {
                this.mode = mode;
                return this;
            }

            /** @param frozenParts frozen leading parts of the network */
            public Builder frozenParts(int frozenParts) {
                this.frozenParts = frozenParts;
                return this;
            }

            /** @param optimizer the update rule */
            public Builder optimizer(OptimizerKind optimizer) {
                this.optimizer = optimizer;
                return this;
            }

            /** @param learningRate the initial learning rate, &gt; 0 */
            public Builder learningRate(double learningRate) {
                this.learningRate = learningRate;
                return this;
            }

            /** @param weightDecay &gt;= 0 (coupled for SGD and Nesterov, decoupled for Adam) */
            public Builder weightDecay(double weightDecay) {
                this.weightDecay = weightDecay;
                return this;
            }

            /** @param schedule how the learning rate moves over the epochs */
            public Builder schedule(LrSchedule schedule) {
                this.schedule = schedule;
                return this;
            }

            /** @param epochs the planned number of epochs, &gt;= 1 */
            public Builder epochs(int epochs) {
                this.epochs = epochs;
                return this;
            }

            /**
             * @return the configuration
             * @throws IllegalArgumentException naming the setting out of range
             */
            public Config build() {
                return new Config(mode, frozenParts, optimizer, learningRate, weightDecay, schedule, epochs, data);
            }
        }

        /** @return the optimiser this configuration describes, fresh */
        public Optimizer newOptimizer() {
            ISchedule s = null;
            if (schedule == LrSchedule.LINEAR) {
                Map<Integer, Double> values = new HashMap<>();
                for (int e = 0; e < epochs; e++) {
                    values.put(e, learningRate * (1 - (double) e / epochs));
                }
                s = new MapSchedule(ScheduleType.EPOCH, values);
            }
            IUpdater u =
                    switch (optimizer) {
                        case SGD -> s == null ? new Sgd(learningRate) : new Sgd(s);
                        case NESTEROV -> s == null ? new Nesterovs(learningRate, 0.9) : new Nesterovs(s, 0.9);
                        case ADAM -> s == null ? new Adam(learningRate) : new Adam(s);
                    };
            Regularization decay = optimizer == OptimizerKind.ADAM
                    ? new WeightDecay(weightDecay, true)
                    : new L2Regularization(weightDecay);
            return weightDecay == 0 ? new Optimizer(u) : new Optimizer(u, decay);
        }
    }

    /**
     * One epoch's outcome.
     *
     * @param epoch 1-based
     * @param trainLoss mean training loss over the epoch's batches
     * @param validationLoss mean loss on the validation data (NaN without validation)
     * @param validationAccuracy fraction correct on the validation data (NaN without validation)
     * @param trainImages images trained on
     * @param trainSeconds wall time of the training part
     * @param learningRate the learning rate the epoch used
     * @param retainedBytes what the network held between forward and backward in a step (exact, see
     *                      {@link Network#retainedBytes()}): activations and the weights a mode keeps
     * @param arenaPeakBytes the most the network's arena had leased at once during the epoch's training: every
     *                       activation, temporary and gradient of a step
     */
    @Immutable
    public record Epoch(
            int epoch,
            double trainLoss,
            double validationLoss,
            double validationAccuracy,
            long trainImages,
            double trainSeconds,
            double learningRate,
            long retainedBytes,
            long arenaPeakBytes) {
        /** @return training throughput */
        public double imagesPerSecond() {
            return trainImages / trainSeconds;
        }
    }

    /** Told after each training batch. */
    @FunctionalInterface
    @NotThreadSafe
    public interface BatchListener {
        /**
         * @param batchIndex 0-based within the epoch
         * @param images images in the batch
         * @param loss the batch's loss
         */
        void batchDone(int batchIndex, int images, double loss);
    }

    /**
     * The network's performance on a data set.
     *
     * @param loss mean softmax cross-entropy (NaN without images)
     * @param accuracy fraction of top-1 predictions equal to the label (NaN without images)
     * @param images images evaluated
     */
    @Immutable
    public record Evaluation(double loss, double accuracy, long images) {
        /** No data: NaN loss and accuracy, 0 images. */
        public static final Evaluation NONE = new Evaluation(Double.NaN, Double.NaN, 0);
    }

    private final Network net;
    private final Config config;
    /** Set by {@link #requestStop} from any thread. */
    private volatile boolean stopRequested;

    private final Optimizer optimizer;
    private final List<Epoch> history;

    private FineTuning(Network net, Config config, Optimizer optimizer, List<Epoch> history) {
        this.net = net;
        this.config = config;
        this.optimizer = optimizer;
        this.history = new ArrayList<>(history);
    }

    /**
     * Starts a run: freezes the network's first {@code config.frozenParts()} parts, sets the mode, makes the
     * optimiser.
     *
     * @param net the network (pretrained, its head replaced as wanted), taken over by the run (closed if the start
     *            fails)
     * @param config the run
     * @return the run at epoch 0
     * @throws IllegalArgumentException if the network has fewer parts than {@code config.frozenParts()} (its parts
     *                                  named)
     */
    public static FineTuning start(Network net, Config config) {
        try {
            prepare(net, config);
        } catch (RuntimeException e) {
            net.close(); // the run took the network over; a failed start does not leave it to leak
            throw e;
        }
        return new FineTuning(net, config, config.newOptimizer(), List.of());
    }

    private static void prepare(Network net, Config config) {
        if (config.frozenParts() > net.freezableParts().size()) {
            throw new IllegalArgumentException(
                    "frozenParts: expected 0.." + net.freezableParts().size() + " for " + net.name() + " (of "
                            + net.freezableParts() + "), got " + config.frozenParts());
        }
        net.setFrozenParts(config.frozenParts());
        net.setMode(config.mode());
    }

    /**
     * A setting whose value in a checkpoint differs from the resuming run's.
     *
     * @param setting its name, as {@link #settings()} gives it
     * @param recorded the checkpoint's value (null if the checkpoint has none)
     * @param requested the run's value (null if the run has none)
     */
    @Immutable
    public record Difference(String setting, String recorded, String requested) {
        /** @return whether a resume may take the run's value when asked to ({@link #FIXED_SETTINGS}) */
        public boolean overridable() {
            return !FIXED_SETTINGS.contains(setting);
        }

        @Override
        public String toString() {
            return setting + " " + (recorded == null ? "(none)" : recorded) + " in the checkpoint, "
                    + (requested == null ? "(none)" : requested) + " now";
        }
    }

    /** A checkpoint made for another run: every setting that differs, listed. */
    @Immutable
    public static final class RunMismatchException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;
        /** Not serialised with the exception; the message carries the list. */
        private final transient List<Difference> differences;

        RunMismatchException(Path checkpoint, List<Difference> differences) {
            super("checkpoint " + checkpoint + ": made for another run: "
                    + differences.stream().map(Difference::toString).collect(Collectors.joining("; ")));
            this.differences = List.copyOf(differences);
        }

        /** @return the settings that differ, in the order the checkpoint records them */
        public List<Difference> differences() {
            return differences;
        }
    }

    /**
     * @return everything that defines this run, as checkpoints record it: the network's name, head size and element
     *         type, then {@link Config#settings()}
     */
    public Map<String, String> settings() {
        return settings(net, config);
    }

    private static Map<String, String> settings(Network net, Config config) {
        Map<String, String> s = new LinkedHashMap<>();
        s.put("model", net.name());
        s.put("classes", Integer.toString(net.classes()));
        s.put("data_type", net.dataType().name());
        s.putAll(config.settings());
        return s;
    }

    /**
     * Continues a run from a checkpoint {@link #checkpoint} wrote, with every setting as the checkpoint records it.
     *
     * @see #resume(Network, Config, Path, Set)
     */
    public static FineTuning resume(Network net, Config config, Path checkpoint) throws IOException {
        return resume(net, config, checkpoint, Set.of());
    }

    /**
     * Continues a run from a checkpoint {@link #checkpoint} wrote. The run's {@link #settings()} must be the
     * checkpoint's, except those named in {@code overridden}, which take the run's value from here on (a new
     * learning rate, say); {@link #FIXED_SETTINGS} cannot be overridden.
     *
     * @param net a network of the checkpoint's architecture and head size (its values are overwritten), taken over
     *            (closed if the resume fails)
     * @param config the run
     * @param checkpoint the file
     * @param overridden names of settings the caller changes on purpose; not modified
     * @return the run at the checkpoint's epoch
     * @throws RunMismatchException listing every setting that differs and is not overridden
     * @throws IllegalArgumentException if the checkpoint is of another format, an overridden name is not a setting
     *                                  or is fixed, or the checkpoint's tensors do not fit the network
     * @throws IOException if it cannot be read
     */
    public static FineTuning resume(Network net, Config config, Path checkpoint, Set<String> overridden)
            throws IOException {
        try {
            return restore(net, config, checkpoint, overridden);
        } catch (IOException | RuntimeException e) {
            net.close(); // the run took the network over; a failed resume does not leave it to leak
            throw e;
        }
    }

    private static FineTuning restore(Network net, Config config, Path checkpoint, Set<String> overridden)
            throws IOException {
        if (!Files.isRegularFile(checkpoint)) {
            throw new IllegalArgumentException("checkpoint: expected a file, got none at " + checkpoint);
        }
        Safetensors.Contents c = Safetensors.read(checkpoint);
        Map<String, String> meta = c.metadata();
        require(checkpoint, "format", CHECKPOINT_FORMAT, meta.get("format"));
        Map<String, String> recorded;
        try {
            recorded = JSON.readValue(
                    meta.getOrDefault("settings", "{}"), new TypeReference<LinkedHashMap<String, String>>() {});
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(
                    "checkpoint " + checkpoint + ": its settings are not a JSON object of " + "names and values ("
                            + e.getOriginalMessage() + ")",
                    e);
        }
        compare(checkpoint, recorded, settings(net, config), overridden);
        Map<String, INDArray> model = new LinkedHashMap<>();
        Map<String, INDArray> optimizerState = new LinkedHashMap<>();
        c.tensors().forEach((name, value) -> {
            if (name.startsWith(MODEL_PREFIX)) {
                model.put(name.substring(MODEL_PREFIX.length()), value);
            } else if (name.startsWith(OPTIMIZER_PREFIX)) {
                optimizerState.put(name.substring(OPTIMIZER_PREFIX.length()), value);
            } else {
                throw new IllegalArgumentException("checkpoint " + checkpoint + ": unexpected tensor " + name);
            }
        });
        prepare(net, config);
        try {
            NetworkState.load(net, model);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("checkpoint " + checkpoint + ": " + e.getMessage(), e);
        }
        Optimizer optimizer = config.newOptimizer();
        Map<String, INDArray> cast = new LinkedHashMap<>();
        optimizerState.forEach((k, v) -> cast.put(k, v.castTo(net.dataType())));
        List<Epoch> history = JSON.readValue(meta.getOrDefault("history", "[]"), new TypeReference<List<Epoch>>() {});
        optimizer.restore(cast, Integer.parseInt(meta.get("iteration")), history.size());
        return new FineTuning(net, config, optimizer, history);
    }

    /** @throws RunMismatchException listing the differences {@code overridden} does not name */
    private static void compare(
            Path checkpoint, Map<String, String> recorded, Map<String, String> now, Set<String> overridden) {
        Set<String> names = new LinkedHashSet<>(recorded.keySet());
        names.addAll(now.keySet());
        for (String o : overridden) {
            if (!names.contains(o)) {
                throw new IllegalArgumentException(
                        "overridden: expected names of settings among " + names + ", got " + o);
            }
            if (FIXED_SETTINGS.contains(o)) {
                throw new IllegalArgumentException("overridden: " + o + " cannot be overridden (the checkpoint's "
                        + "tensors are those of its " + new TreeSet<>(FIXED_SETTINGS) + ")");
            }
        }
        List<Difference> differences = new ArrayList<>();
        for (String n : names) {
            if (!Objects.equals(recorded.get(n), now.get(n)) && !overridden.contains(n)) {
                differences.add(new Difference(n, recorded.get(n), now.get(n)));
            }
        }
        if (!differences.isEmpty()) {
            throw new RunMismatchException(checkpoint, differences);
        }
    }

    private static void require(Path file, String key, String expected, String got) {
        if (!expected.equals(got)) {
            throw new IllegalArgumentException(
                    "checkpoint " + file + ": made for " + key + " " + got + ", expected " + expected);
        }
    }

    /**
     * Asks the run to stop: a running {@link #runEpoch} throws {@link CancellationException} before its next step
     * (the step in progress finishes, the epoch is not recorded), and so does every later one. The one method that
     * may be called from another thread (a shutdown hook, a UI).
     */
    public void requestStop() {
        stopRequested = true;
    }

    /** @return the network being tuned (the run's) */
    public Network network() {
        return net;
    }

    /** @return the run's configuration */
    public Config config() {
        return config;
    }

    /** @return completed epochs */
    public int epochsDone() {
        return history.size();
    }

    /** @return every completed epoch's outcome, in order (also those before a resume) */
    public List<Epoch> history() {
        return List.copyOf(history);
    }

    /**
     * Trains one epoch over {@code train}, then measures the validation loss and accuracy.
     *
     * @param train labels one-hot; {@link EpochAware#startEpoch} is called with the epoch number when it has it,
     *              else it is reset. Batches from an {@link EpochAware} source are freed after use.
     * @param validation may be null
     * @param listener told after each batch
     * @return the epoch's outcome (also appended to {@link #history()})
     * @throws CancellationException if {@link #requestStop} was called (the epoch is then not recorded)
     * @throws IllegalStateException if the training data yields no batch, or a training or validation loss is not
     *                               finite (the run diverged; the epoch is then not recorded, and a checkpoint
     *                               written after the previous epoch stays the last one)
     */
    public Epoch runEpoch(DataSetIterator train, DataSetIterator validation, BatchListener listener) {
        int epoch = history.size();
        optimizer.setEpoch(epoch);
        net.seedDraws(DRAW_SEED + epoch); // a resumed epoch draws the dropout masks the uninterrupted one drew
        double lr = optimizer.learningRate();
        if (train instanceof EpochAware e) {
            e.startEpoch(epoch);
        } else {
            train.reset();
        }
        net.arena().resetPeak();
        long retained = 0;
        long t0 = System.nanoTime();
        double lossSum = 0;
        int batches = 0;
        long images = 0;
        while (train.hasNext()) {
            if (stopRequested) {
                throw new CancellationException("epoch " + (epoch + 1) + " stopped on request after " + batches
                        + " batches; the epoch is not recorded");
            }
            DataSet d = train.next();
            INDArray x = d.getFeatures().castTo(net.dataType());
            int[] labels = labels(d.getLabels());
            TrainingStep.Result step = TrainingStep.run(net, x, labels, optimizer);
            double loss = step.loss();
            retained = Math.max(retained, step.retained().total());
            if (!Double.isFinite(loss)) {
                throw new IllegalStateException("epoch " + (epoch + 1) + ", batch " + batches + ": the loss is " + loss
                        + " (the run diverged; lower the learning rate)");
            }
            if (train instanceof EpochAware) {
                Arena.direct().release(d.getFeatures(), d.getLabels());
            }
            if (x != d.getFeatures()) {
                Arena.direct().release(x);
            }
            lossSum += loss;
            images += labels.length;
            listener.batchDone(batches, labels.length, loss);
            batches++;
        }
        if (batches == 0) {
            throw new IllegalStateException("train: expected at least one batch, got none");
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        long arenaPeak = net.arena().stats().peakLeasedBytes();
        Evaluation val = validation == null ? Evaluation.NONE : evaluate(validation);
        if (val.images() > 0 && !Double.isFinite(val.loss())) {
            throw new IllegalStateException("epoch " + (epoch + 1) + ": the validation loss is " + val.loss()
                    + " (the run diverged; lower the learning rate); the epoch is not recorded");
        }
        Epoch out = new Epoch(
                epoch + 1, lossSum / batches, val.loss(), val.accuracy(), images, seconds, lr, retained, arenaPeak);
        history.add(out);
        return out;
    }

    /**
     * The mean loss and the accuracy of the network on {@code data}, each image once, without dropout and stochastic
     * depth (PyTorch's {@code eval()}); a network in TRAIN is evaluated with its running statistics (EVAL). The mode
     * and the dropout setting are put back, also when the evaluation fails.
     *
     * @param data reset first; labels one-hot
     * @return the loss, accuracy and image count ({@link Evaluation#NONE}'s values without images)
     */
    public Evaluation evaluate(DataSetIterator data) {
        Mode mode = net.mode();
        boolean stochastic = net.stochastic();
        if (mode == Mode.TRAIN) {
            net.setMode(Mode.EVAL);
        }
        net.setStochastic(false);
        try {
            data.reset();
            double lossSum = 0;
            long correct = 0;
            long n = 0;
            while (data.hasNext()) {
                DataSet d = data.next();
                INDArray x = d.getFeatures().castTo(net.dataType());
                int[] labels = labels(d.getLabels());
                INDArray logits = net.forward(x);
                net.clearSaved();
                SoftmaxCrossEntropy.Result r = SoftmaxCrossEntropy.of(logits, labels);
                INDArray predicted = logits.argMax(1);
                for (int i = 0; i < labels.length; i++) {
                    if (predicted.getInt(i) == labels[i]) {
                        correct++;
                    }
                }
                lossSum += r.loss() * labels.length;
                n += labels.length;
                net.arena().release(logits);
                Arena.direct().release(predicted, r.gradLogits());
                if (x != d.getFeatures()) {
                    Arena.direct().release(x);
                }
            }
            return n == 0 ? Evaluation.NONE : new Evaluation(lossSum / n, (double) correct / n, n);
        } finally {
            if (mode == Mode.TRAIN) {
                net.setMode(mode);
            }
            net.setStochastic(stochastic);
        }
    }

    private static int[] labels(INDArray oneHot) {
        if (oneHot.rank() != 2) {
            throw new IllegalArgumentException(
                    "labels: expected one-hot [N, classes], got " + Arrays.toString(oneHot.shape()));
        }
        INDArray idx = oneHot.argMax(1);
        int[] out = idx.toIntVector();
        Arena.direct().release(idx);
        return out;
    }

    /**
     * Writes a checkpoint: the network's state in its mode ({@link NetworkState}), the optimiser's state, the
     * iteration, the run's {@link #settings()} and the history, as one safetensors file written atomically (a
     * temporary file renamed into place: a failed write leaves the previous checkpoint as it was).
     *
     * @param file the target
     * @throws IOException if it cannot be written
     */
    public void checkpoint(Path file) throws IOException {
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        NetworkState.of(net).forEach((k, v) -> tensors.put(MODEL_PREFIX + k, v));
        optimizer.state().entrySet().stream()
                .sorted(Map.Entry.comparingByKey())
                .forEach(e -> tensors.put(OPTIMIZER_PREFIX + e.getKey(), e.getValue()));
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", CHECKPOINT_FORMAT);
        meta.put("model", net.name());
        meta.put("settings", JSON.writeValueAsString(settings()));
        meta.put("epoch", Integer.toString(history.size()));
        meta.put("iteration", Integer.toString(optimizer.iteration()));
        meta.put("history", JSON.writeValueAsString(history));
        Safetensors.write(file, tensors, meta);
    }

    /**
     * Writes the tuned weights in torchvision's names (conv, BN with running statistics, the other layers), for
     * PyTorch's {@code load_state_dict(..., strict=True)} after a safetensors read. A DEPLOY network is unfolded for
     * this (W = W'/s, the shift carried into BN's beta) and put back exactly as it was.
     *
     * @param file the target, written atomically
     * @throws IOException if it cannot be written
     */
    public void exportWeights(Path file) throws IOException {
        if (net.mode() != Mode.DEPLOY) {
            Safetensors.write(file, StateDict.of(net), Map.of("format", "pt", "model", net.name()));
            return;
        }
        Map<String, INDArray> keep = new LinkedHashMap<>();
        NetworkState.of(net).forEach((k, v) -> keep.put(k, v.dup()));
        net.setMode(Mode.EVAL);
        try {
            Safetensors.write(file, StateDict.of(net), Map.of("format", "pt", "model", net.name()));
        } finally {
            net.setMode(Mode.DEPLOY);
            NetworkState.load(net, keep);
        }
    }

    /**
     * Writes the network with BN folded into every conv ({@link StateDict#folded}): {@code conv1.weight} = W',
     * {@code conv1.bias} = b', no BN entries, then the other layers; for inference.
     *
     * @param file the target, written atomically
     * @throws IOException if it cannot be written
     */
    public void exportFolded(Path file) throws IOException {
        Safetensors.write(file, StateDict.folded(net), Map.of("format", "pt", "model", net.name(), "folded", "true"));
    }

    /** @return a one-line description of an epoch ("no validation" when it had none) */
    public static String describe(Epoch e) {
        String validation = Double.isNaN(e.validationLoss())
                ? "no validation"
                : String.format(
                        Locale.ROOT, "validation loss %.4f, accuracy %.4f", e.validationLoss(), e.validationAccuracy());
        return String.format(
                Locale.ROOT,
                "epoch %d: train loss %.4f, %s, %.1f s (%.1f images/s, lr %.3g), held for "
                        + "backward %.1f MiB, arena peak %.1f MiB",
                e.epoch(),
                e.trainLoss(),
                validation,
                e.trainSeconds(),
                e.imagesPerSecond(),
                e.learningRate(),
                e.retainedBytes() / MIB,
                e.arenaPeakBytes() / MIB);
    }

    /** Closes the network. */
    @Override
    public void close() {
        net.close();
    }
}
