package org.convbn.nd4j;

import org.nd4j.linalg.factory.Environment;
import org.nd4j.linalg.factory.Nd4j;

/**
 * libnd4j's platform helpers (oneDNN in the nd4j-native onednn builds) switched off around the ops they reject
 * (dilated float32 convolutions: "could not create a descriptor for a dilated convolution"). The switch
 * ({@link Environment#allowHelpers}) is process-wide, so it is counted: the first thread in turns it off, the last
 * one out turns it back on, and a thread never sees it turned on under an op that needs it off. While any thread is
 * inside, other threads' ops also run on libnd4j's own kernels: slower, same results. When the application has
 * turned the helpers off itself, nothing is switched.
 */
final class PlatformHelpers {
    private static final Object LOCK = new Object();
    /** Threads inside {@link #runWithout}; guarded by LOCK. */
    private static int inside;
    /** Whether the first thread in found the helpers on (and so the last one out turns them on); guarded by LOCK. */
    private static boolean restore;

    private PlatformHelpers() {}

    /** Runs {@code op} with libnd4j's platform helpers off. */
    static void runWithout(Runnable op) {
        enter();
        try {
            op.run();
        } finally {
            exit();
        }
    }

    private static void enter() {
        synchronized (LOCK) {
            if (inside++ == 0) {
                Environment env = Nd4j.getEnvironment();
                restore = env.helpersAllowed();
                if (restore) {
                    env.allowHelpers(false);
                }
            }
        }
    }

    private static void exit() {
        synchronized (LOCK) {
            if (--inside == 0 && restore) {
                Nd4j.getEnvironment().allowHelpers(true);
            }
        }
    }

    /** @return how many threads are inside {@link #runWithout} (for tests) */
    static int inside() {
        synchronized (LOCK) {
            return inside;
        }
    }
}
