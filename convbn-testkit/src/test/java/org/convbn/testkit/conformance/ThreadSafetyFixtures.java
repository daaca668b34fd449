package org.convbn.testkit.conformance;

import net.jcip.annotations.Immutable;
import net.jcip.annotations.NotThreadSafe;
import net.jcip.annotations.ThreadSafe;

/** Public types for {@link ThreadSafetyDeclarationsTest}: some state their thread safety, some do not. */
@ThreadSafe
public final class ThreadSafetyFixtures {
    private ThreadSafetyFixtures() {}

    /** States nothing. */
    public static final class Silent {}

    /** States two things. */
    @ThreadSafe
    @Immutable
    public static final class Contradictory {}

    /** States one thing. */
    @NotThreadSafe
    public static final class Confined {
        /** Not public: not part of the API. */
        static final class Hidden {}
    }

    /** An enum with state that changes: not immutable by itself. */
    public enum Counter {
        ONE;
        int count;
    }

    /** An enum of constants: immutable by the language. */
    public enum Constant {
        A,
        B
    }
}
