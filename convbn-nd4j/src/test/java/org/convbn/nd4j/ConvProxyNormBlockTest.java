package org.convbn.nd4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;
import org.convbn.core.ConvConfig;
import org.convbn.core.proxy.Activation;
import org.convbn.core.proxy.ProxyMoments;
import org.convbn.core.proxy.ProxyNormConfig;
import org.convbn.testkit.conformance.FiniteDifference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/** Conv + GroupNorm + proxy-normalised activation: gradients, batch independence, statistics, the DEPLOY fold. */
class ConvProxyNormBlockTest {
    /** Central-difference step in float64. */
    private static final double FD_STEP = 1e-6;
    /** Relative agreement of backward and central differences, float64. */
    private static final double FD_TOLERANCE = 1e-6;
    /**
     * Smallest scale of a gradient tensor: with the IDENTITY activation beta's gradient is 0 in exact arithmetic (a
     * shift of a = gamma y + beta moves mu alike), and both sides then hold noise, the central difference's ~2e-9
     * (float64 rounding of the loss over FD_STEP); 1e-2 x FD_TOLERANCE leaves room for it.
     */
    private static final double GRADIENT_FLOOR = 1e-2;
    /** float64, the same values through other op orders. */
    private static final double EXACT = 1e-12;
    /** 4 x 64 x 64 values per channel: the sample mean's standard error is ~0.005. */
    private static final double MEAN_TOLERANCE = 0.02;
    /**
     * The sample variance's standard error (~0.01) plus the quantile rule's underestimate of the proxy variance
     * (K = 200 midpoint quantiles have variance 0.99, which raises the output variance by ~0.015).
     */
    private static final double VARIANCE_TOLERANCE = 0.04;
    /** Elements checked per tensor (random sample; every per-channel parameter is checked). */
    private static final int SAMPLES = 12;

    private static ConvProxyNormBlock block(int groups, Activation phi, long seed) {
        ConvConfig conv = ConvConfig.builder(4, 6)
                .kernel(3)
                .padding(1)
                .stride(2)
                .bias(true)
                .build();
        ProxyNormParameters p = ProxyNormParameters.initialize(conv, DataType.DOUBLE, seed);
        SplittableRandom rng = new SplittableRandom(seed);
        // Trained-looking PN parameters, so every gradient path carries weight.
        for (INDArray a : new INDArray[] {p.gamma(), p.beta(), p.betaTilde(), p.gammaTilde()}) {
            for (int c = 0; c < 6; c++) {
                a.putScalar(c, a.getDouble(c) + 0.4 * (rng.nextDouble() - 0.5));
            }
        }
        return new ConvProxyNormBlock(conv, ProxyNormConfig.groupNorm(6, groups, phi), p);
    }

    private static INDArray random(long seed, long... shape) {
        return Nd4j.rand(seed, shape).castTo(DataType.DOUBLE).subi(0.5).muli(2);
    }

    @ParameterizedTest
    @EnumSource(Activation.class)
    void everyGradientMatchesFiniteDifferences(Activation phi) {
        for (int groups : new int[] {1, 3}) {
            ConvProxyNormBlock b = block(groups, phi, 3 + groups);
            INDArray x = random(11, 3, 4, 7, 6);
            INDArray g = random(12, b.conv().outputShape(x.shape()));
            b.forward(x);
            BlockGradients analytic = b.backward(g);
            check(phi + " groups " + groups + " x", x, analytic.input(), () -> loss(b, x, g));
            for (Map.Entry<String, INDArray> e : b.parameters().trainable().entrySet()) {
                check(
                        phi + " groups " + groups + " " + e.getKey(),
                        e.getValue(),
                        analytic.parameter(e.getKey()),
                        () -> loss(b, x, g));
            }
        }
    }

    private static double loss(ConvProxyNormBlock b, INDArray x, INDArray g) {
        double l = b.forward(x).mul(g).sumNumber().doubleValue();
        b.clearSaved();
        return l;
    }

    private static void check(String what, INDArray tensor, INDArray analytic, DoubleSupplier loss) {
        SplittableRandom rng = new SplittableRandom(what.hashCode());
        int n = (int) tensor.length();
        int[] indices =
                n <= SAMPLES ? FiniteDifference.all(n) : rng.ints(SAMPLES, 0, n).toArray();
        double[] numeric = FiniteDifference.gradient(indices, tensor::getDouble, tensor::putScalar, loss, FD_STEP);
        double scale = Math.max(GRADIENT_FLOOR, analytic.amaxNumber().doubleValue());
        INDArray flat = analytic.reshape(analytic.length());
        for (int k = 0; k < indices.length; k++) {
            assertEquals(numeric[k], flat.getDouble(indices[k]), FD_TOLERANCE * scale, what + " element " + indices[k]);
        }
    }

    @Test
    void aSampleIgnoresTheRestOfTheBatch() {
        ConvProxyNormBlock b = block(2, Activation.SILU, 5);
        INDArray x = random(21, 3, 4, 7, 6);
        INDArray other = x.dup();
        other.get(NDArrayIndex.interval(1, 3)).assign(random(22, 2, 4, 7, 6).muli(10));
        INDArray z1 = b.forward(x);
        b.clearSaved();
        INDArray z2 = b.forward(other);
        b.clearSaved();
        INDArray alone = b.forward(x.get(NDArrayIndex.interval(0, 1)).dup());
        b.clearSaved();
        INDArray first = z1.get(NDArrayIndex.interval(0, 1));
        assertTrue(first.equalsWithEps(z2.get(NDArrayIndex.interval(0, 1)), EXACT), "other samples changed sample 0");
        assertTrue(first.equalsWithEps(alone, EXACT), "sample 0 alone differs from sample 0 in the batch");
    }

    /**
     * What a forward keeps, exactly: x, y {@code [N, C, oH, oW]} and the per-group inverse standard deviations
     * {@code [N, groups, 1]}; nothing after the backward or clearSaved.
     */
    @Test
    void theRetainedArraysAreExactlyXTheNormalisedOutputAndTheGroupStatistics() {
        ConvProxyNormBlock b = block(3, Activation.SILU, 7);
        INDArray x = random(41, 2, 4, 9, 8); // stride 2, padding 1: 5x4 outputs
        INDArray z = b.forward(x);
        List<INDArray> kept = b.retainedActivations();
        assertEquals(3, kept.size());
        assertSame(x, kept.get(0));
        assertArrayEquals(new long[] {2, 6, 5, 4}, kept.get(1).shape());
        assertEquals(2L * 3, kept.get(2).length());
        long bytes =
                kept.stream().mapToLong(a -> a.length() * a.dataType().width()).sum();
        assertEquals((2L * 4 * 9 * 8 + 2L * 6 * 5 * 4 + 2L * 3) * Double.BYTES, bytes);
        b.backward(Nd4j.onesLike(z));
        assertEquals(List.of(), b.retainedActivations(), "the backward releases what it kept");
    }

    /** No batch statistics: the forward of a training step (followed by its backward) equals an inference forward. */
    @Test
    void trainingAndInferenceComputeTheSameOutput() {
        ConvProxyNormBlock b = block(3, Activation.RELU, 6);
        INDArray x = random(31, 2, 4, 9, 8);
        INDArray train = b.forward(x);
        b.backward(Nd4j.onesLike(train));
        INDArray inference = b.forward(x);
        b.clearSaved();
        assertTrue(train.equalsWithEps(inference, 0), "training and inference forwards differ");
    }

    /**
     * Gaussian input, one group per channel (each channel standardised per sample), fresh parameters: each output
     * channel has mean ~0 and variance ~sigma2 / (sigma2 + eps_pn), about 0.92 (eps_pn = 0.03 keeps it below 1).
     */
    @ParameterizedTest
    @EnumSource(Activation.class)
    void outputChannelsAreNormalisedForGaussianInput(Activation phi) {
        ConvConfig conv = ConvConfig.builder(8, 4).kernel(1).bias(false).build();
        ConvProxyNormBlock b = new ConvProxyNormBlock(
                conv, ProxyNormConfig.groupNorm(4, 4, phi), ProxyNormParameters.initialize(conv, DataType.DOUBLE, 1));
        INDArray x = Nd4j.randn(7, new long[] {4, 8, 64, 64}).castTo(DataType.DOUBLE);
        INDArray z = b.forward(x);
        b.clearSaved();
        ProxyMoments m = b.proxyMoments();
        for (int c = 0; c < 4; c++) {
            INDArray channel = z.get(NDArrayIndex.all(), NDArrayIndex.point(c));
            double mean = channel.meanNumber().doubleValue();
            double var = channel.varNumber().doubleValue();
            double expected = m.variance()[c] / (m.variance()[c] + ProxyNormConfig.DEFAULT_PROXY_EPS);
            assertEquals(0, mean, MEAN_TOLERANCE, phi + " channel " + c + " mean");
            assertEquals(expected, var, VARIANCE_TOLERANCE, phi + " channel " + c + " variance");
            assertTrue(var > 0.9 && var < 1.0, phi + " channel " + c + " variance " + var);
        }
    }

    /** z = r h - r mu folds into a following 1x1 conv exactly; a 3x3 conv matches away from its padded border. */
    @Test
    void proxyAffineFoldsIntoTheNextConv() {
        ConvProxyNormBlock b = block(2, Activation.SILU, 8);
        INDArray x = random(41, 2, 4, 9, 8);
        INDArray z = b.forward(x);
        b.clearSaved();
        INDArray h = b.forwardActivation(x);
        b.clearSaved();
        ConvConfig oneByOne = ConvConfig.builder(6, 5).kernel(1).bias(true).build();
        ProxyNormParameters next = ProxyNormParameters.initialize(oneByOne, DataType.DOUBLE, 9);
        FoldedParameters f = b.foldIntoNextConv(oneByOne, next.weight(), next.bias());
        INDArray expected = Conv2dOps.forward(oneByOne, z, next.weight(), next.bias());
        INDArray folded = Conv2dOps.forward(oneByOne, h, f.weight(), f.bias());
        assertTrue(expected.equalsWithEps(folded, EXACT), "1x1 fold differs");

        ConvConfig threeByThree =
                ConvConfig.builder(6, 5).kernel(3).padding(1).bias(false).build();
        ProxyNormParameters next3 = ProxyNormParameters.initialize(threeByThree, DataType.DOUBLE, 10);
        FoldedParameters f3 = b.foldIntoNextConv(threeByThree, next3.weight(), null);
        INDArray e3 = Conv2dOps.forward(threeByThree, z, next3.weight(), null);
        INDArray g3 = Conv2dOps.forward(threeByThree, h, f3.weight(), f3.bias());
        assertTrue(interior(e3).equalsWithEps(interior(g3), EXACT), "3x3 fold differs in the interior");
        assertTrue(e3.sub(g3).amaxNumber().doubleValue() > 1e-6, "the border differs for a padded 3x3 conv");
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> b.foldIntoNextConv(
                        ConvConfig.builder(6, 6).kernel(1).groups(2).build(),
                        Nd4j.zeros(DataType.DOUBLE, 6, 3, 1, 1),
                        null));
        assertTrue(e.getMessage().contains("ungrouped"), e.getMessage());
    }

    private static INDArray interior(INDArray t) {
        return t.get(
                NDArrayIndex.all(),
                NDArrayIndex.all(),
                NDArrayIndex.interval(1, t.size(2) - 1),
                NDArrayIndex.interval(1, t.size(3) - 1));
    }

    @Test
    void badInputsAreNamed() {
        ConvConfig conv = ConvConfig.builder(4, 6).kernel(3).build();
        ProxyNormParameters p = ProxyNormParameters.initialize(conv, DataType.DOUBLE, 1);
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> new ConvProxyNormBlock(conv, ProxyNormConfig.layerNorm(5, Activation.RELU), p));
        assertTrue(e.getMessage().contains("norm.channels"), e.getMessage());
        ConvProxyNormBlock b = new ConvProxyNormBlock(conv, ProxyNormConfig.layerNorm(6, Activation.RELU), p);
        e = assertThrows(IllegalArgumentException.class, () -> b.forward(Nd4j.zeros(DataType.FLOAT, 1, 4, 5, 5)));
        assertTrue(e.getMessage().contains("x") && e.getMessage().contains("FLOAT"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> b.backward(Nd4j.zeros(DataType.DOUBLE, 1, 6, 3, 3)));
        ProxyNormParameters wrong = new ProxyNormParameters(
                p.weight(), p.bias(), Nd4j.ones(DataType.DOUBLE, 5), p.beta(), p.betaTilde(), p.gammaTilde());
        e = assertThrows(
                IllegalArgumentException.class,
                () -> new ConvProxyNormBlock(conv, ProxyNormConfig.layerNorm(6, Activation.RELU), wrong));
        assertTrue(e.getMessage().contains("pn.gamma"), e.getMessage());
    }
}
