package org.convbn.testkit.reference;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * A dense row-major float64 tensor: the value type of the reference implementation. The shape array is copied
 * in and out; the data array is shared and mutable, so a caller that keeps a tensor must not write to its data.
 *
 * @param shape dimensions, outermost first
 * @param data values in row-major order, length = product of the shape
 */
public record Tensor(int[] shape, double[] data) {

    public Tensor {
        shape = shape.clone();
        long n = 1;
        for (int d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException(
                        "shape: expected non-negative dimensions, got " + Arrays.toString(shape));
            }
            n *= d;
        }
        if (data.length != n) {
            throw new IllegalArgumentException(
                    "data: expected " + n + " values for shape " + Arrays.toString(shape) + ", got " + data.length);
        }
    }

    /**
     * @param shape a shape of longs (as configs and ND4J give them), not modified
     * @return the same shape as ints
     * @throws ArithmeticException if a dimension exceeds an int
     */
    public static int[] dims(long[] shape) {
        int[] d = new int[shape.length];
        for (int i = 0; i < d.length; i++) {
            d[i] = Math.toIntExact(shape[i]);
        }
        return d;
    }

    /** @return a zero tensor of this shape */
    public static Tensor zeros(int... shape) {
        long n = 1;
        for (int d : shape) {
            n *= d;
        }
        return new Tensor(shape, new double[Math.toIntExact(n)]);
    }

    /** @return a tensor filled with {@code value} */
    public static Tensor filled(double value, int... shape) {
        Tensor t = zeros(shape);
        Arrays.fill(t.data, value);
        return t;
    }

    /** @return a tensor of independent uniform values in [lo, hi) drawn from {@code rng} */
    public static Tensor uniform(SplittableRandom rng, double lo, double hi, int... shape) {
        Tensor t = zeros(shape);
        for (int i = 0; i < t.data.length; i++) {
            t.data[i] = lo + (hi - lo) * rng.nextDouble();
        }
        return t;
    }

    @Override
    public int[] shape() {
        return shape.clone();
    }

    /** @return dimension {@code i} */
    public int dim(int i) {
        return shape[i];
    }

    /** @return the number of elements */
    public int size() {
        return data.length;
    }

    /** @return a deep copy */
    public Tensor copy() {
        return new Tensor(shape, data.clone());
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Tensor t && Arrays.equals(shape, t.shape) && Arrays.equals(data, t.data);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(shape) + Arrays.hashCode(data);
    }

    @Override
    public String toString() {
        return "Tensor" + Arrays.toString(shape);
    }
}
