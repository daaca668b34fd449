package org.convbn.spark;

import static org.convbn.dl4j.Dl4jFixtures.assertClose;
import static org.convbn.dl4j.Dl4jFixtures.assertSameTrainingState;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.convbn.core.Mode;
import org.convbn.dl4j.ConvBNLayers;
import org.convbn.dl4j.Dl4jFixtures;
import org.deeplearning4j.datasets.iterator.utilty.ListDataSetIterator;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.spark.impl.graph.SparkComputationGraph;
import org.deeplearning4j.spark.impl.paramavg.ParameterAveragingTrainingMaster;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.evaluation.classification.Evaluation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.learning.config.Nesterovs;

/**
 * Converted networks on Spark with DL4J's SparkComputationGraph (dl4j-spark 1.0.0-M2 beside ND4J/DL4J 1.0.0-M2.1),
 * master local[2]: parameter averaging after every minibatch, two workers. A fit over 2 minibatches of n examples
 * takes the step one process takes on the 2n together, in every mode whose BN statistics are fixed; evaluation on
 * Spark counts what it counts in one process.
 */
class SparkComputationGraphTest {
    /**
     * float64: the mean of two half-batch gradients against the full-batch mean, summed in another order (and the
     * parameters averaged through Spark's tree aggregation), three Nesterov steps: a few ulps of values of order 1.
     */
    static final double FLOAT64_TOLERANCE = 1e-12;
    /** float32 on the oneDNN kernels: the same sums rounded to 1.2e-7, convolutions of 4 and of 8 images. */
    static final double FLOAT32_TOLERANCE = 1e-4;

    private static final int EXAMPLES = (int) Dl4jFixtures.INPUT_SHAPE[0];
    private static final int STEPS = 3;
    private static final long SEED = 29;
    private static JavaSparkContext spark;

    @BeforeAll
    static void startSpark() {
        spark = new JavaSparkContext(new SparkConf()
                .setMaster("local[2]")
                .setAppName("convbn-spark-test")
                .set("spark.ui.enabled", "false")
                .set("spark.driver.host", "127.0.0.1")
                .set("spark.driver.bindAddress", "127.0.0.1"));
    }

    @AfterAll
    static void stopSpark() {
        spark.stop();
    }

    /** The converted residual graph, Nesterov momentum 0.05 / 0.9. */
    private static ComputationGraph converted(Mode mode, DataType type) {
        return Dl4jFixtures.converted(mode, type, new Nesterovs(0.05, 0.9), SEED);
    }

    /** Two minibatches of {@link #EXAMPLES}: one per worker. */
    private static List<DataSet> step(DataType type, int step) {
        List<DataSet> out = new ArrayList<>();
        for (int w = 0; w < 2; w++) {
            out.add(new DataSet(
                    Dl4jFixtures.input(type, 300 + 2 * step + w), Dl4jFixtures.labels(type, 400 + 2 * step + w)));
        }
        return out;
    }

    /**
     * Averaging after every minibatch of {@link #EXAMPLES} on each worker: one Spark fit of 2 minibatches = 1 step.
     * {@code saveUpdater(true)} is needed: DL4J's builder documents it as the default but leaves it false, and the
     * updater state (Nesterov's velocity here) then restarts from zero at every fit (measured: the parameters 0.011
     * off the single process's after three steps).
     */
    private static SparkComputationGraph onSpark(ComputationGraph net) {
        ParameterAveragingTrainingMaster master = new ParameterAveragingTrainingMaster.Builder(EXAMPLES)
                .batchSizePerWorker(EXAMPLES)
                .averagingFrequency(1)
                .workerPrefetchNumBatches(0)
                .saveUpdater(true)
                .collectTrainingStats(false)
                .rngSeed(SEED)
                .build();
        return new SparkComputationGraph(spark, net, master);
    }

    @ParameterizedTest
    @EnumSource(
            value = Mode.class,
            names = {"EVAL", "DEPLOY", "TUNE"})
    void twoWorkersTakeTheCombinedBatchStep(Mode mode) {
        ComputationGraph single = converted(mode, DataType.DOUBLE);
        SparkComputationGraph distributed = onSpark(converted(mode, DataType.DOUBLE));
        INDArray start = distributed.getNetwork().params().dup();
        for (int s = 0; s < STEPS; s++) {
            List<DataSet> minibatches = step(DataType.DOUBLE, s);
            single.fit(DataSet.merge(minibatches));
            distributed.fit(spark.parallelize(minibatches, 2));
        }
        ComputationGraph trained = distributed.getNetwork();
        assertTrue(trained.params().sub(start).amaxNumber().doubleValue() > 1e-3, "the parameters moved");
        assertSameTrainingState(mode.toString(), single, trained, FLOAT64_TOLERANCE);
        assertEquals(mode, ConvBNLayers.of(trained).get(0).mode(), "the mode survives Spark's serialisation");
    }

    /**
     * In TRAIN each worker normalises with its own minibatch's statistics: a step is the mean of the models each
     * worker makes alone (parameters and running statistics), data-parallel BatchNorm over a worker's minibatch.
     */
    @Test
    void trainAveragesTheWorkersOwnSteps() {
        ComputationGraph alone0 = converted(Mode.TRAIN, DataType.DOUBLE);
        ComputationGraph alone1 = converted(Mode.TRAIN, DataType.DOUBLE);
        SparkComputationGraph distributed = onSpark(converted(Mode.TRAIN, DataType.DOUBLE));
        List<DataSet> minibatches = step(DataType.DOUBLE, 0);
        alone0.fit(minibatches.get(0));
        alone1.fit(minibatches.get(1));
        distributed.fit(spark.parallelize(minibatches, 2));
        assertClose(
                "TRAIN parameters",
                alone0.params().add(alone1.params()).muli(0.5),
                distributed.getNetwork().params(),
                FLOAT64_TOLERANCE);
    }

    /** What a cluster runs: float32 layers on the oneDNN kernels in the executors. */
    @Test
    void float32OnTheOnednnKernels() {
        ComputationGraph single = converted(Mode.TUNE, DataType.FLOAT);
        SparkComputationGraph distributed = onSpark(converted(Mode.TUNE, DataType.FLOAT));
        for (int s = 0; s < STEPS; s++) {
            List<DataSet> minibatches = step(DataType.FLOAT, s);
            single.fit(DataSet.merge(minibatches));
            distributed.fit(spark.parallelize(minibatches, 2));
        }
        assertSameTrainingState("float32 TUNE", single, distributed.getNetwork(), FLOAT32_TOLERANCE);
    }

    /** Spark's evaluation and score of a converted network are the single process's. */
    @Test
    void evaluationAndScoreMatchOneProcess() {
        ComputationGraph net = converted(Mode.TUNE, DataType.DOUBLE);
        List<DataSet> data = new ArrayList<>();
        for (int s = 0; s < 3; s++) {
            data.addAll(step(DataType.DOUBLE, s));
        }
        SparkComputationGraph distributed = onSpark(net.clone());
        JavaRDD<DataSet> rdd = spark.parallelize(data, 2);
        Evaluation onSpark = distributed.evaluate(rdd);
        Evaluation local = net.evaluate(new ListDataSetIterator<>(data, 1));
        assertEquals(local.stats(), onSpark.stats());
        assertEquals(data.size() * EXAMPLES, onSpark.getNumRowCounter(), 0);
        double localScore = 0;
        for (DataSet d : data) {
            localScore += net.score(d) * d.numExamples();
        }
        localScore /= data.size() * EXAMPLES;
        assertEquals(localScore, distributed.calculateScore(rdd, true), FLOAT64_TOLERANCE);
    }
}
