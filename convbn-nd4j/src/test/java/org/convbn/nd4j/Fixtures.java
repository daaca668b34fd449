package org.convbn.nd4j;

import java.util.Arrays;
import org.convbn.core.ConvBNConfig;
import org.convbn.testkit.conformance.RandomCase;
import org.convbn.testkit.reference.ReferenceParameters;
import org.convbn.testkit.reference.Tensor;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Conversions between the reference's tensors and ND4J arrays, and the random case of a configuration. */
public final class Fixtures {
    private Fixtures() {}

    /** One random case in both representations, the reference's rounded to {@code type} first. */
    public record Case(
            ConvBNConfig config,
            ReferenceParameters reference,
            ConvBNParameters nd4j,
            Tensor x,
            INDArray xNd4j,
            Tensor g,
            INDArray gNd4j) {}

    public static Case random(ConvBNConfig config, long[] inputShape, DataType type, long seed) {
        return random(config, inputShape, type, type, seed);
    }

    /**
     * A random case whose input and output gradient are feature maps of {@code featureType} (BFLOAT16 under mixed
     * precision: the reference takes their bfloat16 values), its parameters of {@code type}.
     */
    public static Case random(ConvBNConfig config, long[] inputShape, DataType type, DataType featureType, long seed) {
        if (featureType != type) {
            Case c = random(config, inputShape, type, type, seed);
            INDArray x = c.xNd4j().castTo(featureType);
            INDArray g = c.gNd4j().castTo(featureType);
            return new Case(config, c.reference(), c.nd4j(), toTensor(x), x, toTensor(g), g);
        }
        ReferenceParameters p = RandomCase.parameters(config, seed);
        ReferenceParameters rounded = new ReferenceParameters(
                round(p.weight(), type),
                round(p.bias(), type),
                round(p.gamma(), type),
                round(p.beta(), type),
                round(p.runningMean(), type),
                round(p.runningVar(), type));
        Tensor x = round(RandomCase.tensor(inputShape, seed + 1), type);
        Tensor g = round(RandomCase.tensor(config.producer().outputShape(inputShape), seed + 2), type);
        return new Case(config, rounded, toNd4j(rounded, type), x, toNd4j(x, type), g, toNd4j(g, type));
    }

    public static ConvBNParameters toNd4j(ReferenceParameters p, DataType type) {
        return ConvBNParameters.of(
                toNd4j(p.weight(), type),
                toNd4j(p.bias(), type),
                toNd4j(p.gamma(), type),
                toNd4j(p.beta(), type),
                toNd4j(p.runningMean(), type),
                toNd4j(p.runningVar(), type));
    }

    public static INDArray toNd4j(Tensor t, DataType type) {
        if (t == null) {
            return null;
        }
        long[] shape = Arrays.stream(t.shape()).asLongStream().toArray();
        return Nd4j.create(t.data(), shape, DataType.DOUBLE).castTo(type);
    }

    public static Tensor toTensor(INDArray a) {
        int[] shape = Arrays.stream(a.shape()).mapToInt(Math::toIntExact).toArray();
        return new Tensor(shape, a.dup('c').castTo(DataType.DOUBLE).data().asDouble());
    }

    public static double[] values(INDArray a) {
        return a.dup('c').castTo(DataType.DOUBLE).data().asDouble();
    }

    private static Tensor round(Tensor t, DataType type) {
        if (t == null || type == DataType.DOUBLE) {
            return t;
        }
        double[] d = t.data().clone();
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) d[i];
        }
        return new Tensor(t.shape(), d);
    }
}
