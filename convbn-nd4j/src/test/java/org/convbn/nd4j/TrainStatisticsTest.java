package org.convbn.nd4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import org.convbn.core.BatchNormConfig;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.convbn.core.Mode;
import org.convbn.testkit.conformance.RandomCase;
import org.convbn.testkit.reference.ReferenceConv;
import org.convbn.testkit.reference.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Running statistics after several TRAIN steps, against a direct computation from the conv outputs. */
class TrainStatisticsTest {
    /** float64 sums of ~100 values in two orders, compounded over five steps. */
    static final double TOLERANCE = 1e-12;

    /** Unbiased: PyTorch's convention (the default); biased: DL4J's. */
    @ParameterizedTest(name = "unbiasedRunningVar={0}")
    @ValueSource(booleans = {true, false})
    void runningStatisticsFollowMomentumAndTheConfiguredVariance(boolean unbiasedRunningVar) {
        ConvBNConfig config = ConvBNConfig.of(
                        ConvConfig.builder(3, 5).kernel(3).padding(1).stride(2).build())
                .withBn(BatchNormConfig.of(5).withMomentum(0.3).withUnbiasedRunningVar(unbiasedRunningVar));
        ConvBNBlock block = ConvBNBlock.initialized(config, DataType.DOUBLE, 7);
        Tensor w = Fixtures.toTensor(block.unfoldedParameters().weight());
        Tensor b = Fixtures.toTensor(block.unfoldedParameters().bias());
        double[] mean = new double[5];
        double[] var = {1, 1, 1, 1, 1};
        for (int step = 0; step < 5; step++) {
            Tensor x = RandomCase.tensor(new long[] {3, 3, 9, 7}, 40 + step);
            block.forward(Fixtures.toNd4j(x, DataType.DOUBLE));
            block.clearSaved();
            Tensor y = ReferenceConv.forward(config.conv(), x, w, b);
            int plane = y.dim(2) * y.dim(3);
            int n = y.dim(0) * plane;
            for (int c = 0; c < 5; c++) {
                double s = 0;
                double ss = 0;
                for (int i = 0; i < y.dim(0); i++) {
                    for (int k = 0; k < plane; k++) {
                        double v = y.data()[(i * 5 + c) * plane + k];
                        s += v;
                        ss += v * v;
                    }
                }
                double m = s / n;
                double sumSquares = ss - n * m * m;
                double batchVar = unbiasedRunningVar ? sumSquares / (n - 1) : sumSquares / n;
                mean[c] = 0.7 * mean[c] + 0.3 * m;
                var[c] = 0.7 * var[c] + 0.3 * batchVar;
            }
        }
        INDArray runMean = block.unfoldedParameters().runningMean();
        INDArray runVar = block.unfoldedParameters().runningVar();
        assertArrayEquals(mean, runMean.toDoubleVector(), TOLERANCE);
        assertArrayEquals(var, runVar.toDoubleVector(), TOLERANCE);
        // Frozen modes leave them alone.
        for (Mode mode : new Mode[] {Mode.EVAL, Mode.TUNE}) {
            block.setMode(mode);
            block.forward(Fixtures.toNd4j(RandomCase.tensor(new long[] {2, 3, 9, 7}, 99), DataType.DOUBLE));
            assertArrayEquals(mean, runMean.toDoubleVector(), TOLERANCE);
            assertArrayEquals(var, runVar.toDoubleVector(), TOLERANCE);
        }
    }
}
