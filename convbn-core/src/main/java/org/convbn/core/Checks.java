package org.convbn.core;

import java.util.Arrays;
import net.jcip.annotations.ThreadSafe;

/**
 * Argument checks shared by the modules. Each failure names the argument and says what was expected and what
 * was given.
 */
@ThreadSafe
public final class Checks {
    private Checks() {}

    /**
     * @param name the argument's name, for the message
     * @param value the value checked
     * @throws IllegalArgumentException if {@code value < 1}
     */
    public static int positive(String name, int value) {
        if (value < 1) {
            throw new IllegalArgumentException(name + ": expected >= 1, got " + value);
        }
        return value;
    }

    /** @throws IllegalArgumentException if {@code value < 0} */
    public static int nonNegative(String name, int value) {
        return (int) nonNegative(name, (long) value);
    }

    /** @throws IllegalArgumentException if {@code value < 0} */
    public static long nonNegative(String name, long value) {
        if (value < 0) {
            throw new IllegalArgumentException(name + ": expected >= 0, got " + value);
        }
        return value;
    }

    /** @throws IllegalArgumentException if {@code value} is not finite and strictly positive */
    public static double positiveFinite(String name, double value) {
        if (!(value > 0) || Double.isInfinite(value)) {
            throw new IllegalArgumentException(name + ": expected a finite value > 0, got " + value);
        }
        return value;
    }

    /** @throws IllegalArgumentException if {@code value} is not in [0, 1] */
    public static double unitInterval(String name, double value) {
        if (!(value >= 0 && value <= 1)) {
            throw new IllegalArgumentException(name + ": expected a value in [0, 1], got " + value);
        }
        return value;
    }

    /** @throws IllegalArgumentException if {@code actual} differs from {@code expected} */
    public static void shape(String name, int[] expected, int[] actual) {
        if (!Arrays.equals(expected, actual)) {
            throw new IllegalArgumentException(
                    name + ": expected shape " + Arrays.toString(expected) + ", got " + Arrays.toString(actual));
        }
    }
}
