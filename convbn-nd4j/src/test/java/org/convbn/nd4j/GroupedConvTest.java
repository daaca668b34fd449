package org.convbn.nd4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.stream.IntStream;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.convbn.core.GroupedBlocks;
import org.convbn.core.Mode;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.testkit.conformance.FiniteDifference;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Grouped presets against the dense conv they restrict: a grouped conv is a full conv whose weight is block-diagonal
 * over (output group, input group); G = 1 is depthwise, G = C the full conv. Gradients of the preset blocks against
 * central differences; the network counters against torchvision's published parameter counts.
 */
class GroupedConvTest {
    /** float64, other summation order. */
    private static final double EXACT = 1e-12;

    private static final double FD_STEP = 1e-6;
    private static final double FD_TOLERANCE = 1e-6;

    /** The block-diagonal dense weight [O, C, k, k] of a grouped weight [O, C/g, k, k]. */
    private static INDArray blockDiagonal(ConvConfig grouped, INDArray w) {
        int o = grouped.outChannels();
        int cpg = grouped.inChannelsPerGroup();
        int opg = grouped.outChannelsPerGroup();
        INDArray dense = Nd4j.zeros(w.dataType(), o, grouped.inChannels(), grouped.kernelH(), grouped.kernelW());
        for (int g = 0; g < grouped.groups(); g++) {
            dense.get(NDArrayIndex.interval(g * opg, (g + 1) * opg), NDArrayIndex.interval(g * cpg, (g + 1) * cpg))
                    .assign(w.get(NDArrayIndex.interval(g * opg, (g + 1) * opg)));
        }
        return dense;
    }

    /** Group sizes 1 (depthwise), 4, 16 (the default) and 32 (full) on 32 channels. */
    @ParameterizedTest
    @ValueSource(ints = {1, 4, 16, 32})
    void groupedEqualsMaskedDenseForwardAndBackward(int groupSize) {
        ConvBNConfig preset = GroupedBlocks.grouped(32, 64, 3, 2, groupSize);
        ConvConfig grouped = preset.conv();
        ConvConfig dense = ConvConfig.builder(32, 64)
                .kernel(3)
                .stride(2)
                .padding(1)
                .bias(false)
                .build();
        if (groupSize == 1) {
            assertTrue(grouped.isDepthwise());
        }
        if (groupSize == 32) {
            assertEquals(dense, grouped);
        }
        INDArray w = Nd4j.rand(3, grouped.weightShape()).castTo(DataType.DOUBLE).subi(0.5);
        INDArray wd = blockDiagonal(grouped, w);
        INDArray x =
                Nd4j.rand(4, new long[] {2, 32, 9, 8}).castTo(DataType.DOUBLE).subi(0.5);
        INDArray y = Conv2dOps.forward(grouped, x, w, null);
        assertTrue(y.equalsWithEps(Conv2dOps.forward(dense, x, wd, null), EXACT), "forward");
        INDArray g = Nd4j.rand(5, y.shape()).castTo(DataType.DOUBLE).subi(0.5);
        Kernels.ConvGradients gg = Conv2dOps.backward(grouped, x, w, null, g);
        Kernels.ConvGradients gd = Conv2dOps.backward(dense, x, wd, null, g);
        assertTrue(gg.input().equalsWithEps(gd.input(), EXACT), "dX");
        // dW of the grouped conv is the block-diagonal part of the dense conv's dW.
        INDArray maskedDense = gd.weight().mul(blockDiagonal(grouped, Nd4j.onesLike(w)));
        assertTrue(blockDiagonal(grouped, gg.weight()).equalsWithEps(maskedDense, EXACT), "dW");
    }

    /** The preset blocks' backward in EVAL and TUNE against central differences of their forward. */
    @ParameterizedTest
    @ValueSource(ints = {1, 16})
    void presetBlockGradientsMatchFiniteDifferences(int groupSize) {
        for (Mode mode : new Mode[] {Mode.EVAL, Mode.TUNE}) {
            ConvBNConfig config = GroupedBlocks.grouped(32, 32, 3, 1, groupSize);
            ConvBNParameters p = ConvBNParameters.initialize(config, DataType.DOUBLE, 7);
            p.runningMean()
                    .assign(Nd4j.rand(8, new long[] {32})
                            .castTo(DataType.DOUBLE)
                            .subi(0.5));
            p.runningVar()
                    .assign(Nd4j.rand(9, new long[] {32})
                            .castTo(DataType.DOUBLE)
                            .addi(0.5));
            p.gamma()
                    .assign(Nd4j.rand(10, new long[] {32})
                            .castTo(DataType.DOUBLE)
                            .addi(0.5));
            ConvBNBlock block = ConvBNBlock.of(config, p, mode);
            INDArray x = Nd4j.rand(11, new long[] {2, 32, 6, 5})
                    .castTo(DataType.DOUBLE)
                    .subi(0.5);
            INDArray g = Nd4j.rand(12, new long[] {2, 32, 6, 5})
                    .castTo(DataType.DOUBLE)
                    .subi(0.5);
            block.forward(x);
            BlockGradients analytic = block.backward(g);
            for (Map.Entry<String, INDArray> e : block.parameters().entrySet()) {
                INDArray t = e.getValue();
                INDArray a = analytic.parameter(e.getKey()).reshape(t.length());
                double scale = Math.max(1e-3, a.amaxNumber().doubleValue());
                int[] indices = IntStream.range(0, (int) t.length())
                        .filter(i -> i % Math.max(1, t.length() / 10) == 0)
                        .toArray();
                double[] numeric = FiniteDifference.gradient(
                        indices,
                        t::getDouble,
                        t::putScalar,
                        () -> {
                            double l = block.forward(x).mul(g).sumNumber().doubleValue();
                            block.clearSaved();
                            return l;
                        },
                        FD_STEP);
                for (int k = 0; k < indices.length; k++) {
                    assertEquals(
                            numeric[k],
                            a.getDouble(indices[k]),
                            FD_TOLERANCE * scale,
                            mode + " G=" + groupSize + " " + e.getKey() + "[" + indices[k] + "]");
                }
            }
        }
    }
}
