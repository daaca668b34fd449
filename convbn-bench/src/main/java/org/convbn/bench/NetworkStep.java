package org.convbn.bench;

import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import org.convbn.core.Mode;
import org.convbn.core.Precision;
import org.convbn.core.RetainedBytes;
import org.convbn.core.TuneFold;
import org.convbn.nd4j.Optimizer;
import org.convbn.net.Coupling;
import org.convbn.net.Network;
import org.convbn.net.ResNet;
import org.convbn.train.TrainingStep;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Nesterovs;
import org.nd4j.linalg.learning.regularization.L2Regularization;

/**
 * One fine-tuning step of a whole network in one mode, with a fixed random batch: forward, softmax
 * cross-entropy, backward of every block, SGD update. Shared by the report and the JMH benchmarks.
 */
public final class NetworkStep implements BenchStep {
    /** Classes of the synthetic task (ImageNet's head size). */
    public static final int CLASSES = 1000;
    /**
     * The coupling reversible stages are measured at: alpha 1, beta 0.5, early in a schedule from the pretrained
     * (1, 0), where float32 reconstruction loses ~2.5e-5 relative per stage (docs/reversible.md). Time and memory
     * do not depend on it; at beta 1 a randomly initialised ResNet-50's activations grow through the summed
     * streams until SGD diverges.
     */
    public static final Coupling REVERSIBLE_COUPLING = new Coupling(1, 0.5);
    /** Below this beta a reversible stage keeps activations: float32 reconstruction error passes 1e-3 near 0.1. */
    public static final double REVERSIBLE_MIN_BETA = 0.25;

    private final Network network;
    private final INDArray input;
    private final int[] labels;
    /** SGD with Nesterov momentum 0.9 and coupled weight decay 1e-4, as the PyTorch peer runs it. */
    private final Optimizer optimizer = new Optimizer(new Nesterovs(1e-3, 0.9), new L2Regularization(1e-4));

    private RetainedBytes lastRetained = RetainedBytes.NONE;

    /**
     * @param model the network shapes
     * @param mode the mode every block runs in
     * @param tuneFold what TUNE keeps of each block's fold
     * @param reversible whether the stages are reversible, run at {@link #REVERSIBLE_COUPLING}
     * @param batch batch size
     * @param resolution input height and width
     * @param type FLOAT or DOUBLE: parameters, the input image and the loss
     * @param precision how feature maps are stored
     * @param seed the seed of weights, input and labels
     */
    public NetworkStep(
            Model model,
            Mode mode,
            TuneFold tuneFold,
            boolean reversible,
            int batch,
            int resolution,
            DataType type,
            Precision precision,
            long seed) {
        this.network = model.build(
                CLASSES, type, precision, seed, tuneFold, reversible, REVERSIBLE_MIN_BETA, model.groupSize());
        if (network instanceof ResNet r) {
            r.setCoupling(REVERSIBLE_COUPLING);
        }
        pretrainedLikeStatistics(network, seed);
        network.setMode(mode);
        Nd4j.getRandom().setSeed(seed);
        this.input = Nd4j.randn(type, batch, 3, resolution, resolution);
        SplittableRandom rng = new SplittableRandom(seed);
        this.labels = rng.ints(batch, 0, CLASSES).toArray();
    }

    /** Runs one step. @return the loss before the update */
    @Override
    public double run() {
        TrainingStep.Result r = TrainingStep.run(network, input, labels, optimizer);
        lastRetained = r.retained();
        return r.loss();
    }

    /** @return what the network held between forward and backward in the last step */
    public RetainedBytes lastRetained() {
        return lastRetained;
    }

    @Override
    public long retainedBytes() {
        return lastRetained().total();
    }

    @Override
    public long retainedActivationBytes() {
        return lastRetained().activationBytes();
    }

    @Override
    public long heldBetweenStepsBytes() {
        return network.arena().stats().touchedBytes();
    }

    @Override
    public String kernels() {
        return network.kernels().describe();
    }

    @Override
    public Map<String, List<String>> implementations() {
        Map<String, List<String>> out = new TreeMap<>();
        network.kernels().implementations().forEach((k, v) -> out.put(k, List.copyOf(v)));
        return out;
    }

    /** @return the network */
    public Network network() {
        return network;
    }

    /**
     * Running statistics and BN scales spread like a pretrained network's (var in [0.05, 2], gamma in [0.2, 1.5])
     * so that s = gamma / sqrt(var + eps) varies across channels as it does after ImageNet training.
     */
    static void pretrainedLikeStatistics(Network net, long seed) {
        SplittableRandom rng = new SplittableRandom(seed ^ 0x5DEECE66DL);
        net.blocks().forEach(b -> {
            var p = b.block().unfoldedParameters();
            long o = p.runningVar().length();
            double[] var = new double[(int) o];
            double[] mean = new double[(int) o];
            double[] gamma = new double[(int) o];
            for (int c = 0; c < o; c++) {
                var[c] = 0.05 + 1.95 * rng.nextDouble();
                mean[c] = 0.2 * (rng.nextDouble() - 0.5);
                gamma[c] = 0.2 + 1.3 * rng.nextDouble();
            }
            DataType t = p.runningVar().dataType();
            p.runningVar().assign(Nd4j.createFromArray(var).castTo(t));
            p.runningMean().assign(Nd4j.createFromArray(mean).castTo(t));
            if (p.gamma() != null) {
                p.gamma().assign(Nd4j.createFromArray(gamma).castTo(t));
            }
        });
    }
}
