package org.convbn.nd4j;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ParameterNames;
import org.convbn.core.ProducerConfig;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The unfolded tensors of a ConvBN block: the conv's ({@link ConvParameters}) and the BatchNorm's
 * ({@link BatchNormState}). The record holds references: the arrays are the block's live state, updated in place by
 * an optimiser (W, b, gamma, beta) and by TRAIN forwards (running statistics).
 *
 * @param conv W and b
 * @param batchNorm gamma, beta and the running statistics
 */
@NotThreadSafe
public record ConvBNParameters(ConvParameters conv, BatchNormState batchNorm) {
    public ConvBNParameters {
        Objects.requireNonNull(conv, "conv");
        Objects.requireNonNull(batchNorm, "batchNorm");
    }

    /**
     * @param weight W in the producer's layout ({@code [O, C/groups, kH, kW]} for a conv, see
     *               {@link ProducerConfig#weightShape()})
     * @param bias b {@code [O]}, or null when the conv has no bias
     * @param gamma BN scale {@code [O]}, or null when BN is not affine
     * @param beta BN shift {@code [O]}, or null when BN is not affine
     * @param runningMean {@code [O]}
     * @param runningVar {@code [O]}, every element &gt;= 0
     * @return the tensors, as references
     * @throws IllegalArgumentException for a missing W or running statistic, or gamma without beta (named)
     */
    public static ConvBNParameters of(
            INDArray weight, INDArray bias, INDArray gamma, INDArray beta, INDArray runningMean, INDArray runningVar) {
        return new ConvBNParameters(
                new ConvParameters(weight, bias), new BatchNormState(gamma, beta, runningMean, runningVar));
    }

    /** @return W */
    public INDArray weight() {
        return conv.weight();
    }

    /** @return b, or null when the conv has no bias */
    public INDArray bias() {
        return conv.bias();
    }

    /** @return gamma, or null when BN is not affine */
    public INDArray gamma() {
        return batchNorm.gamma();
    }

    /** @return beta, or null when BN is not affine */
    public INDArray beta() {
        return batchNorm.beta();
    }

    /** @return the running mean */
    public INDArray runningMean() {
        return batchNorm.runningMean();
    }

    /** @return the running variance */
    public INDArray runningVar() {
        return batchNorm.runningVar();
    }

    /**
     * PyTorch's default initialisation: W and b uniform in +-1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5)),
     * gamma = 1, beta = 0, running mean 0, running variance 1.
     *
     * @param config the block configuration
     * @param dataType FLOAT or DOUBLE
     * @param seed the seed of the uniform draws
     * @return new arrays
     */
    public static ConvBNParameters initialize(ConvBNConfig config, DataType dataType, long seed) {
        requireFloatingType(dataType);
        SplittableRandom rng = new SplittableRandom(seed);
        long[] ws = config.producer().weightShape();
        double bound = 1.0 / Math.sqrt((double) config.producer().fanIn());
        int o = config.channels();
        INDArray w = uniform(rng, bound, dataType, ws);
        INDArray b = config.producer().bias() ? uniform(rng, bound, dataType, o) : null;
        INDArray gamma = config.bn().affine() ? Nd4j.ones(dataType, o) : null;
        INDArray beta = config.bn().affine() ? Nd4j.zeros(dataType, o) : null;
        return of(w, b, gamma, beta, Nd4j.zeros(dataType, o), Nd4j.ones(dataType, o));
    }

    /**
     * Checks presence, shape and data type of every tensor against {@code config}, and that the running variance
     * is non-negative.
     *
     * @return the data type shared by all tensors
     * @throws IllegalArgumentException naming the first tensor that does not fit, with expected and actual
     */
    public DataType validate(ConvBNConfig config) {
        INDArray weight = weight();
        INDArray bias = bias();
        INDArray gamma = gamma();
        INDArray beta = beta();
        INDArray runningMean = runningMean();
        INDArray runningVar = runningVar();
        DataType type = weight.dataType();
        requireFloatingType(type);
        long o = config.channels();
        Tensors.requireShape(
                config.producer().weightName(), weight, config.producer().weightShape());
        requireVector(config.producer().biasName(), bias, config.producer().bias(), o, type);
        requireVector(ParameterNames.BN_WEIGHT, gamma, config.bn().affine(), o, type);
        requireVector(ParameterNames.BN_BIAS, beta, config.bn().affine(), o, type);
        requireVector(ParameterNames.BN_RUNNING_MEAN, runningMean, true, o, type);
        requireVector(ParameterNames.BN_RUNNING_VAR, runningVar, true, o, type);
        Tensors.requireNonNegative(ParameterNames.BN_RUNNING_VAR, runningVar);
        return type;
    }

    /**
     * @return the trainable tensors by name (W, then b, gamma, beta where present) with a conv's names
     *         ({@code conv.weight}, ...); live references
     */
    public Map<String, INDArray> trainable() {
        return trainable(ParameterNames.CONV_WEIGHT, ParameterNames.CONV_BIAS);
    }

    /**
     * @param producer names W and b ({@code linear.weight} for a linear layer)
     * @return the trainable tensors by name (W, then b, gamma, beta where present); live references
     */
    public Map<String, INDArray> trainable(ProducerConfig producer) {
        return trainable(producer.weightName(), producer.biasName());
    }

    private Map<String, INDArray> trainable(String weightName, String biasName) {
        Map<String, INDArray> m = new LinkedHashMap<>();
        m.put(weightName, weight());
        if (bias() != null) {
            m.put(biasName, bias());
        }
        if (gamma() != null) {
            m.put(ParameterNames.BN_WEIGHT, gamma());
            m.put(ParameterNames.BN_BIAS, beta());
        }
        return m;
    }

    /** @return the running statistics by name; live references */
    public Map<String, INDArray> buffers() {
        Map<String, INDArray> m = new LinkedHashMap<>();
        m.put(ParameterNames.BN_RUNNING_MEAN, runningMean());
        m.put(ParameterNames.BN_RUNNING_VAR, runningVar());
        return m;
    }

    /** @return a deep copy */
    public ConvBNParameters copy() {
        return of(
                weight().dup(),
                dup(bias()),
                dup(gamma()),
                dup(beta()),
                runningMean().dup(),
                runningVar().dup());
    }

    /** @return b, or zeros {@code [O]} when the conv has no bias (a new array then) */
    INDArray biasOrZeros() {
        return bias() != null ? bias() : Nd4j.zeros(weight().dataType(), weight().size(0));
    }

    private static INDArray dup(INDArray a) {
        return a == null ? null : a.dup();
    }

    private static void requireVector(String name, INDArray a, boolean expected, long length, DataType type) {
        if (!expected) {
            if (a != null) {
                throw new IllegalArgumentException(
                        name + ": expected null for this configuration, got an array of shape "
                                + Arrays.toString(a.shape()));
            }
            return;
        }
        Tensors.requireShape(name, a, length);
        Tensors.requireType(name, a, type);
    }

    static void requireFloatingType(DataType type) {
        if (type != DataType.FLOAT && type != DataType.DOUBLE) {
            throw new IllegalArgumentException("dataType: expected FLOAT or DOUBLE, got " + type);
        }
    }

    private static INDArray uniform(SplittableRandom rng, double bound, DataType type, long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        double[] v = new double[Math.toIntExact(n)];
        for (int i = 0; i < v.length; i++) {
            v[i] = bound * (2 * rng.nextDouble() - 1);
        }
        return Nd4j.create(v, shape, DataType.DOUBLE).castTo(type);
    }
}
