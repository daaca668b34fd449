package org.convbn.nd4j;

import java.util.Arrays;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastAddOp;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastMulOp;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Small per-channel helpers and argument checks on INDArrays. Methods say which arguments they modify.
 */
final class Tensors {
    private Tensors() {
    }

    /** @return bytes of an array's elements (not of its backing buffer, which a view may share) */
    static long bytes(INDArray a) {
        return a == null ? 0 : a.length() * a.dataType().width();
    }

    /**
     * {@code out[n, c, ...] = t[n, c, ...] * scale[c] + shift[c]} along dimension 1.
     *
     * @param t an NCHW array, not modified
     * @param scale {@code [C]}, not modified
     * @param shift {@code [C]}, not modified
     * @return a new array shaped like {@code t}
     */
    static INDArray channelAffine(INDArray t, INDArray scale, INDArray shift) {
        INDArray out = Nd4j.createUninitialized(t.dataType(), t.shape());
        Nd4j.exec(new BroadcastMulOp(t, scale, out, 1));
        Nd4j.exec(new BroadcastAddOp(out, shift, out, 1));
        return out;
    }

    /**
     * Multiplies each output channel (dimension 0) of a weight by its scale.
     *
     * @param w {@code [O, ...]}, not modified
     * @param scale {@code [O]}, not modified
     * @return a new array shaped like {@code w}
     */
    static INDArray scaleOutputChannels(INDArray w, INDArray scale) {
        INDArray out = Nd4j.createUninitialized(w.dataType(), w.shape());
        Nd4j.exec(new BroadcastMulOp(w, scale, out, 0));
        return out;
    }

    /** @return per-channel sums over N, H, W of an NCHW array, a new {@code [C]} array */
    static INDArray channelSums(INDArray t) {
        return t.sum(0, 2, 3);
    }

    /**
     * @throws IllegalArgumentException if the array's shape differs from {@code expected}
     */
    static void requireShape(String name, INDArray a, long... expected) {
        if (a == null) {
            throw new IllegalArgumentException(name + ": expected an array of shape " + Arrays.toString(expected)
                    + ", got null");
        }
        if (!Arrays.equals(expected, a.shape())) {
            throw new IllegalArgumentException(name + ": expected shape " + Arrays.toString(expected) + ", got "
                    + Arrays.toString(a.shape()));
        }
    }

    /**
     * @throws IllegalArgumentException if the array's data type differs from {@code expected}
     */
    static void requireType(String name, INDArray a, DataType expected) {
        if (a.dataType() != expected) {
            throw new IllegalArgumentException(name + ": expected data type " + expected + ", got " + a.dataType());
        }
    }

    /**
     * Checks that every element is finite, with one native reduction (the sum of finite values of a parameter
     * tensor cannot overflow in practice) and a scan only to name the offending element.
     *
     * @throws IllegalArgumentException naming the array, the first non-finite element's index and value
     */
    static void requireFinite(String name, INDArray a) {
        if (a == null || Double.isFinite(a.sumNumber().doubleValue())) {
            return;
        }
        double[] values = a.dup().ravel().toDoubleVector();
        for (int i = 0; i < values.length; i++) {
            if (!Double.isFinite(values[i])) {
                throw new IllegalArgumentException(name + ": expected finite values, got " + values[i]
                        + " at flat index " + i + " of shape " + Arrays.toString(a.shape()));
            }
        }
        throw new IllegalArgumentException(name + ": expected finite values, but their sum overflows");
    }

    /**
     * @throws IllegalArgumentException naming the first negative element of a variance
     */
    static void requireNonNegative(String name, INDArray a) {
        if (a.minNumber().doubleValue() >= 0) {
            return;
        }
        double[] values = a.toDoubleVector();
        for (int i = 0; i < values.length; i++) {
            if (!(values[i] >= 0)) {
                throw new IllegalArgumentException(name + ": expected values >= 0, got " + values[i] + " at channel " + i);
            }
        }
    }
}
