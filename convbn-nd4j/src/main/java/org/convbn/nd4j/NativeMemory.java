package org.convbn.nd4j;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Frees arrays' native buffers at once rather than whenever the garbage collector finds them. ND4J's CPU arrays
 * live off-heap and a step of a network allocates far more off-heap memory than the Java heap notices, so
 * without this the peak memory of a step is the sum of everything it allocated, not what it really needed.
 *
 * <p>Only release arrays you created, that nobody else holds, and that have no live views: a view of a released
 * buffer reads freed memory. Views, workspace arrays and already released arrays are skipped.
 */
public final class NativeMemory {
    private NativeMemory() {
    }

    /**
     * Releases each non-null array's buffer; the arrays must not be used afterwards.
     *
     * @param arrays modified: released
     */
    public static void release(INDArray... arrays) {
        for (INDArray a : arrays) {
            // Workspace arrays are freed with their workspace, and refuse close().
            if (a != null && !a.isView() && a.closeable()) {
                a.close();
            }
        }
    }
}
