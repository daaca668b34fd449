package org.convbn.testkit.conformance;

/**
 * The error measure used to compare two tensors: {@code max_i |a_i - b_i| / max(max_i |a_i|, max_i |b_i|, floor)}.
 *
 * <p>Normalising by the tensor's largest magnitude (not element by element) keeps tiny elements that are pure
 * rounding noise from dominating; the floor makes tensors that are zero in exact arithmetic (the conv bias
 * gradient in TRAIN, which BN cancels) compare in absolute terms.
 */
public final class RelativeError {
    private RelativeError() {}

    /**
     * @param a first values, not modified
     * @param b second values, same length, not modified
     * @param floor smallest denominator, &gt;= 0
     * @return the relative error, 0 for two empty arrays
     * @throws IllegalArgumentException if the lengths differ
     */
    public static double of(double[] a, double[] b, double floor) {
        if (a.length != b.length) {
            throw new IllegalArgumentException("b: expected length " + a.length + ", got " + b.length);
        }
        double diff = 0;
        double scale = floor;
        for (int i = 0; i < a.length; i++) {
            if (Double.isNaN(a[i]) || Double.isNaN(b[i])) {
                return Double.POSITIVE_INFINITY;
            }
            diff = Math.max(diff, Math.abs(a[i] - b[i]));
            scale = Math.max(scale, Math.max(Math.abs(a[i]), Math.abs(b[i])));
        }
        return scale == 0 ? diff : diff / scale;
    }

    /**
     * The relative error in the L2 norm, {@code ||a - b|| / ||a||}: for tensors where one element may differ entirely
     * (a ReLU whose input rounding moved across zero), which the max-norm measure of {@link #of} reports as an error of
     * order one however many elements agree.
     *
     * @param a reference values, not modified
     * @param b values compared with them, same length, not modified
     * @return the relative error, {@code ||a - b||} when a is zero, infinity when either holds a NaN
     * @throws IllegalArgumentException if the lengths differ
     */
    public static double l2(double[] a, double[] b) {
        if (a.length != b.length) {
            throw new IllegalArgumentException("b: expected length " + a.length + ", got " + b.length);
        }
        double diff = 0;
        double norm = 0;
        for (int i = 0; i < a.length; i++) {
            if (Double.isNaN(a[i]) || Double.isNaN(b[i])) {
                return Double.POSITIVE_INFINITY;
            }
            diff += (a[i] - b[i]) * (a[i] - b[i]);
            norm += a[i] * a[i];
        }
        return norm == 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
    }
}
