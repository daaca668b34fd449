package org.convbn.testkit.conformance;

import java.util.function.DoubleSupplier;
import java.util.function.IntToDoubleFunction;

/**
 * Central finite differences of a scalar loss with respect to the elements of one tensor, whatever library
 * holds the tensor: the caller gives element access and a loss that reads the tensor's current values.
 */
public final class FiniteDifference {
    private FiniteDifference() {}

    /** Writes one element of a tensor. */
    @FunctionalInterface
    public interface ElementWriter {
        void set(int index, double value);
    }

    /**
     * Estimates {@code dL/dt[i] = (L(t + h e_i) - L(t - h e_i)) / (2h)} for each requested element. Each element
     * is perturbed in place and restored to its exact original value before the next one.
     *
     * @param indices flat indices of the elements to estimate, not modified
     * @param get reads element i of the tensor
     * @param set writes element i of the tensor (the tensor is modified during the call, restored at the end)
     * @param loss the loss at the tensor's current values
     * @param h the step
     * @return the estimates, in the order of {@code indices}
     */
    public static double[] gradient(
            int[] indices, IntToDoubleFunction get, ElementWriter set, DoubleSupplier loss, double h) {
        double[] out = new double[indices.length];
        for (int k = 0; k < indices.length; k++) {
            int i = indices[k];
            double original = get.applyAsDouble(i);
            set.set(i, original + h);
            double plus = loss.getAsDouble();
            set.set(i, original - h);
            double minus = loss.getAsDouble();
            set.set(i, original);
            out[k] = (plus - minus) / (2 * h);
        }
        return out;
    }

    /** @return {0, 1, ..., n-1} */
    public static int[] all(int n) {
        int[] idx = new int[n];
        for (int i = 0; i < n; i++) {
            idx[i] = i;
        }
        return idx;
    }
}
