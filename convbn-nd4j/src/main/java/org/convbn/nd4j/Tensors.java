package org.convbn.nd4j;

import java.util.Arrays;
import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Small per-channel helpers and argument checks on INDArrays. Methods say which arguments they modify.
 */
final class Tensors {
    private Tensors() {}

    /**
     * A view of {@code [from, to)} along one dimension, made on the array's root buffer at its absolute offset.
     * ND4J's {@code get} measures the offset of a view of a view against the inner view's own buffer, so slicing an
     * array that sits past its own length in a larger buffer (every array of a {@link
     * org.convbn.nd4j.kernel.PooledArena} but the first of a chunk) yields an empty rank-0 array; this does not.
     *
     * @param t not modified; writes to the result reach it
     * @return the view (shares t's memory)
     */
    static INDArray slice(INDArray t, int dim, long from, long to) {
        DataBuffer root = t.data();
        while (root.originalDataBuffer() != null && root.originalDataBuffer() != root) {
            root = root.originalDataBuffer();
        }
        long[] shape = t.shape().clone();
        shape[dim] = to - from;
        return Nd4j.create(root, shape, t.stride(), t.offset() + from * t.stride(dim), t.ordering(), t.dataType());
    }

    /** @return bytes of an array's elements (not of its backing buffer, which a view may share) */
    static long bytes(INDArray a) {
        return a == null ? 0 : a.length() * a.dataType().width();
    }

    /**
     * @throws IllegalArgumentException if the array's shape differs from {@code expected}
     */
    static void requireShape(String name, INDArray a, long... expected) {
        if (a == null) {
            throw new IllegalArgumentException(
                    name + ": expected an array of shape " + Arrays.toString(expected) + ", got null");
        }
        if (!Arrays.equals(expected, a.shape())) {
            throw new IllegalArgumentException(
                    name + ": expected shape " + Arrays.toString(expected) + ", got " + Arrays.toString(a.shape()));
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
     * @throws NonFiniteTensorException naming the array, the first non-finite element's index and value
     */
    static void requireFinite(String name, INDArray a) {
        if (a == null || Double.isFinite(a.sumNumber().doubleValue())) {
            return;
        }
        double[] values = a.dup().ravel().toDoubleVector();
        for (int i = 0; i < values.length; i++) {
            if (!Double.isFinite(values[i])) {
                throw new NonFiniteTensorException(
                        name,
                        "expected finite values, got " + values[i] + " at flat index " + i + " of shape "
                                + Arrays.toString(a.shape()));
            }
        }
        throw new NonFiniteTensorException(name, "expected finite values, but their sum overflows");
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
                throw new IllegalArgumentException(
                        name + ": expected values >= 0, got " + values[i] + " at channel " + i);
            }
        }
    }
}
