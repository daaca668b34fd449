package org.convbn.bench;

import java.util.SplittableRandom;
import org.convbn.dl4j.ConvBNConverter;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.WorkspaceMode;
import org.deeplearning4j.nn.conf.graph.GraphVertex;
import org.deeplearning4j.nn.conf.graph.LayerVertex;
import org.deeplearning4j.nn.conf.layers.BatchNormalization;
import org.deeplearning4j.nn.conf.layers.misc.FrozenLayerWithBackprop;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.params.BatchNormalizationParamInitializer;
import org.deeplearning4j.zoo.model.ResNet50;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Nesterovs;

/**
 * One {@code fit} of DL4J's zoo ResNet50 (its configuration, built without downloading weights) on a fixed random
 * batch, fine-tuned with frozen BN: as DL4J does it (each BatchNormalization in FrozenLayerWithBackprop), or
 * converted to ConvBN layers in a mode. SGD with Nesterov momentum 0.9 (learning rate {@link #LEARNING_RATE}), the
 * zoo's l1/l2. The converted variants run with DL4J's workspaces on (training and inference), as a DL4J application
 * runs; DL4J's own frozen-BN network runs with them off, because DL4J 1.0.0-M2.1 fails
 * FrozenLayerWithBackprop(BatchNormalization) with them on ("outdated workspace pointer"). The workspaces DL4J keeps
 * between steps are counted in a step's memory ({@link #heldBetweenStepsBytes}).
 */
public final class Dl4jStep implements BenchStep {
    /**
     * The benchmark's learning rate: 0, so every step of every variant runs on the same weights and data (the full
     * step still runs: gradients, updater state, update). At 1e-3 DL4J's frozen-BN network diverges to NaN within
     * three steps, because FrozenLayerWithBackprop(BatchNormalization) backpropagates the batch-statistics formula
     * (docs/dl4j.md), and NaN arithmetic would then be what DL4J's steps are timed on.
     */
    public static final double LEARNING_RATE = 0.0;

    private final ComputationGraph graph;
    private final DataSet batch;

    /**
     * @param variant what to run
     * @param batchSize batch size
     * @param resolution input height and width (at least 112: the zoo's final 3x3 pooling needs 4x4 maps)
     * @param seed the seed of weights, statistics, input and labels
     */
    public Dl4jStep(Dl4jVariant variant, int batchSize, int resolution, long seed) {
        this(variant, batchSize, resolution, seed, LEARNING_RATE);
    }

    /**
     * @param learningRate the SGD learning rate (Nesterov momentum 0.9)
     */
    public Dl4jStep(Dl4jVariant variant, int batchSize, int resolution, long seed, double learningRate) {
        if (resolution < 112) {
            throw new IllegalArgumentException("--resolution: the zoo ResNet50 needs >= 112, got " + resolution);
        }
        ComputationGraph frozenBn = frozenBnResNet50(resolution, seed, learningRate);
        if (variant.mode() == null) {
            this.graph = frozenBn;
        } else {
            this.graph = ConvBNConverter.builder()
                    .mode(variant.mode())
                    .tuneFold(variant.tuneFold())
                    .build()
                    .apply(frozenBn)
                    .network();
            graph.getConfiguration().setTrainingWorkspaceMode(WorkspaceMode.ENABLED);
            graph.getConfiguration().setInferenceWorkspaceMode(WorkspaceMode.ENABLED);
        }
        Nd4j.getRandom().setSeed(seed);
        INDArray x = Nd4j.randn(DataType.FLOAT, batchSize, 3, resolution, resolution);
        INDArray y = Nd4j.zeros(DataType.FLOAT, batchSize, NetworkStep.CLASSES);
        SplittableRandom rng = new SplittableRandom(seed);
        for (int i = 0; i < batchSize; i++) {
            y.putScalar(i, rng.nextInt(NetworkStep.CLASSES), 1.0);
        }
        this.batch = new DataSet(x, y);
    }

    /** The zoo ResNet50 with pretrained-looking weights and statistics, each BN in FrozenLayerWithBackprop. */
    static ComputationGraph frozenBnResNet50(int resolution, long seed, double learningRate) {
        ComputationGraphConfiguration conf = ResNet50.builder()
                .numClasses(NetworkStep.CLASSES)
                .inputShape(new int[] {3, resolution, resolution})
                .seed(seed)
                .updater(new Nesterovs(learningRate, 0.9))
                .workspaceMode(WorkspaceMode.NONE)
                .build()
                .graphBuilder()
                .build();
        for (GraphVertex v : conf.getVertices().values()) {
            if (v instanceof LayerVertex lv && lv.getLayerConf().getLayer() instanceof BatchNormalization bn) {
                FrozenLayerWithBackprop frozen = new FrozenLayerWithBackprop(bn);
                frozen.setLayerName(bn.getLayerName());
                lv.getLayerConf().setLayer(frozen);
            }
        }
        ComputationGraph g = new ComputationGraph(conf);
        g.init();
        pretrainedLike(g.getLayers(), seed);
        return g;
    }

    /**
     * Weights N(0, 1/fanIn) (the zoo's N(0, 0.5) overflows float32 through 50 layers under frozen statistics) and BN
     * statistics spread as after ImageNet training, as {@link NetworkStep} sets them (gamma in [0.2, 1.5], in
     * [0.04, 0.3] at the end of each residual branch).
     */
    private static void pretrainedLike(Layer[] layers, long seed) {
        SplittableRandom rng = new SplittableRandom(seed ^ 0x5DEECE66DL);
        for (Layer l : layers) {
            var p = l.paramTable();
            // Trained ResNets end each residual branch with a small BN scale; without it activations grow through
            // the 16 summed units until SGD diverges.
            String name = l.conf().getLayer().getLayerName();
            double gammaMax = name != null && name.endsWith("branch2c") ? 0.3 : 1.5;
            INDArray w = p.get("W");
            if (w != null) {
                long fanIn = w.length() / (w.rank() == 4 ? w.size(0) : w.size(1));
                w.assign(Nd4j.randn(rng.nextLong(), w.shape())
                        .castTo(w.dataType())
                        .muli(Math.sqrt(1.0 / fanIn)));
            }
            INDArray log10Std = p.get(BatchNormalizationParamInitializer.GLOBAL_LOG_STD);
            if (log10Std != null) {
                INDArray gamma = p.get(BatchNormalizationParamInitializer.GAMMA);
                INDArray mean = p.get(BatchNormalizationParamInitializer.GLOBAL_MEAN);
                for (long c = 0; c < log10Std.length(); c++) {
                    log10Std.putScalar(c, 0.5 * Math.log10(0.05 + 1.95 * rng.nextDouble()));
                    mean.putScalar(c, 0.2 * (rng.nextDouble() - 0.5));
                    gamma.putScalar(c, 0.2 * gammaMax / 1.5 + (gammaMax - 0.2 * gammaMax / 1.5) * rng.nextDouble());
                }
            }
        }
    }

    @Override
    public double run() {
        graph.fit(batch);
        return graph.score();
    }

    /**
     * @return the bytes DL4J's workspaces of this thread hold between steps (allocated once, reused by every step;
     *         none without workspaces)
     */
    @Override
    public long heldBetweenStepsBytes() {
        long bytes = 0;
        for (MemoryWorkspace ws : Nd4j.getWorkspaceManager().getAllWorkspacesForCurrentThread()) {
            bytes += ws.getCurrentSize();
        }
        return bytes;
    }

    /** Not tracked for DL4J networks: DL4J keeps each layer's input and its own caches. */
    @Override
    public long retainedBytes() {
        return -1;
    }

    @Override
    public long retainedActivationBytes() {
        return -1;
    }

    /** @return the fixed minibatch every step trains on */
    public DataSet batch() {
        return batch;
    }

    /** @return the network */
    public ComputationGraph graph() {
        return graph;
    }
}
