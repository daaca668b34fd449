package org.convbn.testkit.conformance;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.convbn.core.BatchNormConfig;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.convbn.core.ConvTransposeConfig;
import org.convbn.core.LinearConfig;
import org.convbn.core.Padding;

/**
 * The grid of small block configurations every backend is checked on: stride 1/2, padding 0/1/same, dilation
 * 1/2, groups 1/2/depthwise, conv bias on/off, BN affine on/off, kernel 1x1/3x3, on an odd-sized input.
 */
public final class ConfigGrid {
    /** Input channels of every grid case. */
    public static final int IN_CHANNELS = 4;
    /** Output channels: twice the input, so the depthwise case has a channel multiplier of 2. */
    public static final int OUT_CHANNELS = 8;
    /** Input shape {@code [N, C, H, W]}: odd and unequal spatial sizes catch transposed or rounded indices. */
    public static final long[] INPUT_SHAPE = {2, IN_CHANNELS, 7, 5};

    private ConfigGrid() {}

    /**
     * One grid point.
     *
     * @param config the block configuration (eps 1e-3 so the variance term is not negligible, momentum 0.1)
     * @param inputShape the input shape to run it on
     */
    public record Case(ConvBNConfig config, long[] inputShape) {
        @Override
        public String toString() {
            if (!(config.producer() instanceof ConvConfig c)) {
                return config.producer() + (config.bn().affine() ? " affine" : " noaffine") + " on "
                        + Arrays.toString(inputShape);
            }
            return "k" + c.kernelH() + " s" + c.strideH() + " p" + c.padding() + " d" + c.dilationH() + " g"
                    + c.groups() + (c.bias() ? " bias" : " nobias")
                    + (config.bn().affine() ? " affine" : " noaffine");
        }
    }

    /** @return every combination of the grid's values (288 cases) */
    public static List<Case> full() {
        List<Case> cases = new ArrayList<>();
        for (int kernel : new int[] {1, 3}) {
            for (int stride : new int[] {1, 2}) {
                for (Padding padding : new Padding[] {Padding.of(0), Padding.of(1), Padding.same()}) {
                    for (int dilation : new int[] {1, 2}) {
                        for (int groups : new int[] {1, 2, IN_CHANNELS}) {
                            for (boolean bias : new boolean[] {true, false}) {
                                for (boolean affine : new boolean[] {true, false}) {
                                    cases.add(make(kernel, stride, padding, dilation, groups, bias, affine));
                                }
                            }
                        }
                    }
                }
            }
        }
        return cases;
    }

    /**
     * A covering subset: every value of every dimension appears, and every pair of (stride, padding, dilation,
     * groups) values appears together at least once across the 3x3 kernel cases. Used where each case is costly.
     *
     * @return 18 cases
     */
    public static List<Case> covering() {
        List<Case> cases = new ArrayList<>();
        Padding[] paddings = {Padding.of(0), Padding.of(1), Padding.same()};
        int[] groupsValues = {1, 2, IN_CHANNELS};
        int i = 0;
        for (Padding padding : paddings) {
            for (int groups : groupsValues) {
                int stride = 1 + (i % 2);
                int dilation = 1 + ((i / 2) % 2);
                boolean bias = i % 3 != 0;
                boolean affine = i % 4 != 1;
                cases.add(make(3, stride, padding, dilation, groups, bias, affine));
                cases.add(make(1, 2 - (i % 2), padding, 1, groups, !bias, !affine));
                i++;
            }
        }
        return cases;
    }

    /** Input shape of the transposed-conv cases {@code [N, C, H, W]}: odd and unequal sizes, as for the conv. */
    public static final long[] TRANSPOSED_INPUT_SHAPE = {2, IN_CHANNELS, 5, 4};

    /**
     * Transposed convs (PyTorch's ConvTranspose2d) from 4 to 8 channels: every value of kernel 1/3, stride 1/2,
     * padding 0/1, output padding 0/1 (with stride 2), dilation 1/2, groups 1/2/4, bias and BN affine on/off
     * appears, each pair of (stride, padding, dilation, groups) values on a 3x3 kernel; plus 8 -> 8 channels in 2
     * groups, where a fold scaling the weight's dimension 0 instead of each group's output channels runs without a
     * shape error and is wrong.
     *
     * @return 26 cases
     */
    public static List<Case> transposed() {
        List<Case> cases = new ArrayList<>();
        int i = 0;
        for (int stride : new int[] {1, 2}) {
            for (int padding : new int[] {0, 1}) {
                for (int groups : new int[] {1, 2, IN_CHANNELS}) {
                    int dilation = 1 + (i % 2);
                    int outputPadding = stride == 2 ? (i / 2) % 2 : 0;
                    boolean bias = i % 3 != 0;
                    boolean affine = i % 4 != 1;
                    cases.add(transposed(
                            IN_CHANNELS,
                            OUT_CHANNELS,
                            3,
                            stride,
                            padding,
                            outputPadding,
                            dilation,
                            groups,
                            bias,
                            affine));
                    cases.add(transposed(
                            IN_CHANNELS,
                            OUT_CHANNELS,
                            1,
                            3 - stride,
                            0,
                            stride == 1 ? 1 : 0,
                            1,
                            groups,
                            !bias,
                            !affine));
                    i++;
                }
            }
        }
        cases.add(transposed(OUT_CHANNELS, OUT_CHANNELS, 3, 2, 1, 1, 1, 2, true, true));
        cases.add(transposed(OUT_CHANNELS, OUT_CHANNELS, 2, 2, 0, 0, 1, 2, false, true));
        return cases;
    }

    /**
     * A transposed conv case on {@link #TRANSPOSED_INPUT_SHAPE} with {@code in} channels.
     */
    public static Case transposed(
            int in,
            int out,
            int kernel,
            int stride,
            int padding,
            int outputPadding,
            int dilation,
            int groups,
            boolean bias,
            boolean affine) {
        ConvTransposeConfig t = ConvTransposeConfig.builder(in, out)
                .kernel(kernel)
                .stride(stride)
                .padding(padding)
                .outputPadding(outputPadding)
                .dilation(dilation)
                .groups(groups)
                .bias(bias)
                .build();
        long[] shape = TRANSPOSED_INPUT_SHAPE.clone();
        shape[1] = in;
        return new Case(new ConvBNConfig(t, new BatchNormConfig(out, 1e-3, 0.1, affine), true), shape);
    }

    /**
     * Linear layers (5 -> 6 features) followed by BatchNorm1d, on {@code [N, F]} (N = 6) and {@code [N, F, L]}
     * inputs, bias and affine on/off.
     *
     * @return 8 cases
     */
    public static List<Case> linear() {
        List<Case> cases = new ArrayList<>();
        for (long[] shape : new long[][] {{6, 5}, {3, 5, 4}}) {
            for (boolean bias : new boolean[] {true, false}) {
                for (boolean affine : new boolean[] {true, false}) {
                    cases.add(new Case(
                            new ConvBNConfig(
                                    new LinearConfig(5, 6, bias), new BatchNormConfig(6, 1e-3, 0.1, affine), true),
                            shape.clone()));
                }
            }
        }
        return cases;
    }

    private static Case make(
            int kernel, int stride, Padding padding, int dilation, int groups, boolean bias, boolean affine) {
        ConvConfig conv = ConvConfig.builder(IN_CHANNELS, OUT_CHANNELS)
                .kernel(kernel)
                .stride(stride)
                .padding(padding)
                .dilation(dilation)
                .groups(groups)
                .bias(bias)
                .build();
        BatchNormConfig bn = new BatchNormConfig(OUT_CHANNELS, 1e-3, 0.1, affine);
        return new Case(new ConvBNConfig(conv, bn, true), INPUT_SHAPE.clone());
    }
}
