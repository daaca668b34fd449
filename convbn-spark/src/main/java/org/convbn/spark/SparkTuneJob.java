package org.convbn.spark;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import net.jcip.annotations.NotThreadSafe;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.convbn.core.Mode;
import org.convbn.dl4j.ConvBNConverter;
import org.convbn.io.AtomicFiles;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.WorkspaceMode;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.params.BatchNormalizationParamInitializer;
import org.deeplearning4j.nn.weights.WeightInitRelu;
import org.deeplearning4j.spark.impl.graph.SparkComputationGraph;
import org.deeplearning4j.spark.impl.paramavg.ParameterAveragingTrainingMaster;
import org.deeplearning4j.util.ModelSerializer;
import org.deeplearning4j.zoo.model.ResNet50;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Nesterovs;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Data-parallel fine-tuning on Spark, the job to {@code spark-submit}: a DL4J network (a saved one, or DL4J's zoo
 * ResNet50 configuration, He-initialised, the last BN of each residual branch at gamma = 0) converted to ConvBN layers
 * in TUNE, trained with DL4J's {@link SparkComputationGraph}
 * and parameter averaging (one worker per Spark task slot, the parameters and the updater state averaged every
 * {@code --averaging} minibatches), then written with {@link ModelSerializer}. Data: directories of DL4J DataSet
 * files ({@code DataSet.save}, as {@link SparkComputationGraph#fit(String)} reads them), or with no
 * {@code --data} random images and labels made on the driver, which is what the throughput figures use.
 *
 * <p>Prints per step (one averaging round: every worker trains {@code --averaging} minibatches of
 * {@code --batch}) the time and the images per second, then the median over the steps after the first.
 */
@Command(
        name = "spark-tune",
        mixinStandardHelpOptions = true,
        description = "Fine-tune a DL4J network converted to ConvBN layers (TUNE) on Spark with parameter averaging.")
@NotThreadSafe
public final class SparkTuneJob implements Callable<Integer> {
    @Option(
            names = "--network",
            description = "a DL4J ComputationGraph saved with ModelSerializer (default: the zoo "
                    + "ResNet50 configuration, He-initialised, with --classes outputs)")
    Path network;

    @Option(
            names = "--data",
            description = "a directory (local, HDFS, S3: any Hadoop path) of DataSet files of "
                    + "--batch examples each; needed with --network (default: random images for the zoo network, --steps "
                    + "rounds of them)")
    String data;

    @Option(names = "--mode", description = "the ConvBN layers' mode (default: ${DEFAULT-VALUE})")
    Mode mode = Mode.TUNE;

    @Option(names = "--batch", description = "examples per worker minibatch (default: ${DEFAULT-VALUE})")
    int batch = 8;

    @Option(
            names = "--averaging",
            description = "minibatches each worker trains between averages " + "(default: ${DEFAULT-VALUE})")
    int averaging = 1;

    @Option(
            names = "--steps",
            description = "averaging rounds over random data, or epochs over --data " + "(default: ${DEFAULT-VALUE})")
    int steps = 5;

    @Option(
            names = "--resolution",
            description = "input height and width of the zoo network (default: " + "${DEFAULT-VALUE})")
    int resolution = 224;

    @Option(names = "--classes", description = "outputs of the zoo network (default: ${DEFAULT-VALUE})")
    int classes = 10;

    @Option(
            names = {"--lr", "--learning-rate"},
            description = "SGD with Nesterov momentum 0.9, for the zoo network " + "(default: ${DEFAULT-VALUE})")
    double learningRate = 1e-3;

    @Option(
            names = {"--out", "--output"},
            description = "where to write the trained network (ModelSerializer zip)")
    Path output;

    /** Exit codes: 0 done, 2 bad options or input (named in an "error: ..." line), 1 anything else. */
    public static void main(String[] args) {
        CommandLine cli = new CommandLine(new SparkTuneJob()).setCaseInsensitiveEnumValuesAllowed(true);
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            if (e instanceof IllegalArgumentException || e instanceof IOException) {
                cmd.getErr().println("error: " + e.getMessage());
                return 2;
            }
            throw e;
        });
        System.exit(cli.execute(args));
    }

    @Override
    public Integer call() throws IOException {
        validate();
        SparkConf conf = new SparkConf().setAppName("convbn spark-tune");
        if (!conf.contains("spark.master")) {
            conf.setMaster("local[*]"); // run outside spark-submit: this machine's cores
        }
        try (JavaSparkContext spark = new JavaSparkContext(conf)) {
            int workers = spark.defaultParallelism();
            ComputationGraph net =
                    ConvBNConverter.builder().mode(mode).build().apply(load()).network();
            net.getConfiguration().setTrainingWorkspaceMode(WorkspaceMode.ENABLED);
            net.getConfiguration().setInferenceWorkspaceMode(WorkspaceMode.ENABLED);
            ParameterAveragingTrainingMaster master = new ParameterAveragingTrainingMaster.Builder(workers, batch)
                    .batchSizePerWorker(batch)
                    .averagingFrequency(averaging)
                    .workerPrefetchNumBatches(0)
                    // DL4J's builder documents saveUpdater as the default but leaves it off (momentum then restarts
                    // at every fit).
                    .saveUpdater(true)
                    .collectTrainingStats(false)
                    .rngSeed(1)
                    .build();
            SparkComputationGraph trainer = new SparkComputationGraph(spark, net, master);
            System.out.printf(
                    Locale.ROOT,
                    "master %s, %d workers, %s, batch %d per worker, averaging every %d%n",
                    spark.master(),
                    workers,
                    mode,
                    batch,
                    averaging);
            List<Double> rates = new ArrayList<>();
            for (int s = 0; s < steps; s++) {
                long t0 = System.nanoTime();
                long images;
                if (data != null) {
                    trainer.fit(data);
                    images = -1;
                } else {
                    List<DataSet> round = randomRound(workers * averaging, s);
                    trainer.fit(spark.parallelize(round, workers));
                    images = (long) round.size() * batch;
                }
                double seconds = (System.nanoTime() - t0) / 1e9;
                double rate = images / seconds;
                if (s > 0 && images > 0) {
                    rates.add(rate);
                }
                System.out.printf(
                        Locale.ROOT,
                        "step %d: %.0f ms, %s, score %.4f%n",
                        s + 1,
                        seconds * 1e3,
                        images > 0 ? String.format(Locale.ROOT, "%.2f images/s", rate) : "epoch over " + data,
                        trainer.getScore());
            }
            if (!rates.isEmpty()) {
                Collections.sort(rates);
                int n = rates.size();
                double median = n % 2 == 1 ? rates.get(n / 2) : (rates.get(n / 2 - 1) + rates.get(n / 2)) / 2;
                System.out.printf(
                        Locale.ROOT,
                        "median over steps 2-%d: %.2f images/s (min %.2f, max %.2f)%n",
                        steps,
                        median,
                        rates.get(0),
                        rates.get(n - 1));
            }
            if (output != null) {
                ComputationGraph trained = trainer.getNetwork();
                AtomicFiles.write(output, out -> ModelSerializer.writeModel(trained, out, true));
                System.out.println("wrote " + output.toAbsolutePath());
            }
        }
        return 0;
    }

    private void validate() {
        if (batch < 1) {
            throw new IllegalArgumentException("--batch: expected at least 1, got " + batch);
        }
        if (averaging < 1) {
            throw new IllegalArgumentException("--averaging: expected at least 1, got " + averaging);
        }
        if (steps < 1) {
            throw new IllegalArgumentException("--steps: expected at least 1, got " + steps);
        }
        if (network == null && resolution < 112) {
            throw new IllegalArgumentException("--resolution: the zoo ResNet50 needs at least 112, got " + resolution);
        }
        if (classes < 2) {
            throw new IllegalArgumentException("--classes: expected at least 2, got " + classes);
        }
        if (!(learningRate >= 0) || !Double.isFinite(learningRate)) {
            throw new IllegalArgumentException("--lr: expected a finite value >= 0, got " + learningRate);
        }
        if (network != null && data == null) {
            throw new IllegalArgumentException("--data: expected with --network (random images are made for the zoo "
                    + "network's input only), got none");
        }
        if (network != null && !Files.isRegularFile(network)) {
            throw new IllegalArgumentException("--network: expected a ModelSerializer file, got " + network
                    + (Files.exists(network) ? " (not a file)" : " (missing)"));
        }
        if (output != null) {
            AtomicFiles.checkWritable(output, "--out");
        }
    }

    private ComputationGraph load() throws IOException {
        if (network != null) {
            return ModelSerializer.restoreComputationGraph(network.toFile(), true);
        }
        ComputationGraph g = ResNet50.builder()
                .numClasses(classes)
                .inputShape(new int[] {3, resolution, resolution})
                .seed(1)
                .weightInit(new WeightInitRelu())
                .updater(new Nesterovs(learningRate, 0.9))
                .build()
                .init();
        // The last BN of each residual branch starts at gamma = 0 (Goyal et al., "Accurate, Large Minibatch SGD"):
        // with fixed statistics nothing else keeps 16 summed branches from growing the activations until they
        // overflow, which a pretrained network's small final gammas do.
        for (Layer l : g.getLayers()) {
            String name = l.conf().getLayer().getLayerName();
            if (name != null
                    && name.endsWith("branch2c")
                    && l.paramTable().containsKey(BatchNormalizationParamInitializer.GAMMA)) {
                l.paramTable().get(BatchNormalizationParamInitializer.GAMMA).assign(0);
            }
        }
        return g;
    }

    /** {@code count} minibatches of random images in [-1, 1) and random one-hot labels. */
    private List<DataSet> randomRound(int count, long seed) {
        List<DataSet> out = new ArrayList<>();
        SplittableRandom rng = new SplittableRandom(seed);
        for (int i = 0; i < count; i++) {
            INDArray x = Nd4j.rand(rng.nextLong(), new long[] {batch, 3, resolution, resolution})
                    .castTo(DataType.FLOAT)
                    .subi(0.5)
                    .muli(2);
            INDArray y = Nd4j.zeros(DataType.FLOAT, batch, classes);
            for (int n = 0; n < batch; n++) {
                y.putScalar(n, rng.nextInt(classes), 1.0);
            }
            out.add(new DataSet(x, y));
        }
        return out;
    }
}
