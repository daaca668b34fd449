package org.convbn.nd4j.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * SiLU, ReLU6, hardswish, their backwards and the per-channel gate against direct double-precision formulas, on any
 * kernel set ({@link #check}, also run by convbn-onednn on its kernels), including pre-activations far outside the
 * range where {@code e^z} overflows float32.
 */
public class ElementwiseKernelsTest {
    /** float32 rounding of a few operations on values up to 60 (relative to the larger of 1 and the value). */
    static final double FLOAT_TOLERANCE = 1e-5;
    /** float64 rounding, same measure. */
    static final double DOUBLE_TOLERANCE = 1e-13;

    private static final double[] Z = {-100, -60, -44, -20, -3, -1, -0.25, 0, 0.25, 1, 3, 20, 44, 60, 100};
    /** Around ReLU6's and hardswish's kinks (0, 6; -3, 3), not on them: the derivative is one-sided there. */
    private static final double[] KINKS = {-7, -3.25, -2.75, -1, -0.25, 0.25, 1, 2.75, 3.25, 5.75, 6.25, 9};

    @Test
    void nd4jKernels() {
        check(new Nd4jKernels(DataType.FLOAT, Arena.direct()), FLOAT_TOLERANCE);
        check(new Nd4jKernels(DataType.DOUBLE, Arena.direct()), DOUBLE_TOLERANCE);
    }

    /**
     * @param k the kernel set, its data type's arrays
     * @param tolerance allowed error relative to max(1, |expected|)
     */
    public static void check(Kernels k, double tolerance) {
        DataType t = k.dataType();
        INDArray z = Nd4j.createFromArray(Z).castTo(t).reshape(1, Z.length, 1, 1);
        INDArray g = Nd4j.ones(t, z.shape()).muli(0.5);
        INDArray a = k.silu(z);
        k.siluBackwardInPlace(z, g);
        for (int i = 0; i < Z.length; i++) {
            double s = 1 / (1 + Math.exp(-Z[i]));
            close("silu(" + Z[i] + ")", Z[i] * s, a.getDouble(i), tolerance);
            close("silu'(" + Z[i] + ") / 2", 0.5 * (s + Z[i] * s * (1 - s)), g.getDouble(i), tolerance);
        }
        INDArray v = Nd4j.createFromArray(KINKS).castTo(t).reshape(1, KINKS.length, 1, 1);
        INDArray relu6 = k.copy(v);
        k.relu6InPlace(relu6);
        INDArray g6 = Nd4j.ones(t, v.shape()).muli(0.5);
        k.relu6BackwardInPlace(relu6, g6);
        INDArray hs = k.hardswish(v);
        INDArray gh = Nd4j.ones(t, v.shape()).muli(0.5);
        k.hardswishBackwardInPlace(v, gh);
        for (int i = 0; i < KINKS.length; i++) {
            double u = KINKS[i];
            close("relu6(" + u + ")", Math.min(Math.max(u, 0), 6), relu6.getDouble(i), tolerance);
            close("relu6'(" + u + ") / 2", u > 0 && u < 6 ? 0.5 : 0, g6.getDouble(i), tolerance);
            close("hardswish(" + u + ")", u * Math.min(Math.max(u + 3, 0), 6) / 6, hs.getDouble(i), tolerance);
            close(
                    "hardswish'(" + u + ") / 2",
                    0.5 * (u < -3 ? 0 : u > 3 ? 1 : (2 * u + 3) / 6),
                    gh.getDouble(i),
                    tolerance);
        }
        // the gate in every layout: [2, 16, 3, 3], s[n, c] = n + c / 16
        INDArray x = Nd4j.rand(t, 2, 16, 3, 3);
        INDArray gate = Nd4j.create(t, 2, 16);
        for (int n = 0; n < 2; n++) {
            for (int c = 0; c < 16; c++) {
                gate.putScalar(n, c, n + c / 16.0);
            }
        }
        for (Layout layout : Layout.values()) {
            INDArray in = layout == Layout.NCHW ? x : k.relayout(x, layout);
            INDArray out = k.scaleChannels(in, gate);
            INDArray plain = layout == Layout.NCHW ? out : k.relayout(out, Layout.NCHW);
            for (int n = 0; n < 2; n++) {
                for (int c = 0; c < 16; c++) {
                    for (int h = 0; h < 3; h++) {
                        close(
                                layout + " gate",
                                x.getDouble(n, c, h, 2) * (n + c / 16.0),
                                plain.getDouble(n, c, h, 2),
                                tolerance);
                    }
                }
            }
        }
    }

    private static void close(String what, double expected, double actual, double tolerance) {
        assertEquals(expected, actual, tolerance * Math.max(1, Math.abs(expected)), what);
    }
}
