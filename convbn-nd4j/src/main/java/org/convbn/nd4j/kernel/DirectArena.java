package org.convbn.nd4j.kernel;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Allocates through ND4J on every call, so that arrays land in the caller's ND4J workspace when one is open, and
 * frees released arrays at once (workspace arrays and views are left to their owner). Keeps no state.
 */
final class DirectArena implements Arena {
    static final DirectArena INSTANCE = new DirectArena();

    private DirectArena() {}

    @Override
    public INDArray allocate(DataType type, long... shape) {
        return Nd4j.createUninitialized(type, shape);
    }

    @Override
    public void release(INDArray... arrays) {
        for (INDArray a : arrays) {
            // Workspace arrays are freed with their workspace and refuse close(); a view's buffer is its owner's.
            if (a != null && !a.isView() && a.closeable()) {
                a.close();
            }
        }
    }

    @Override
    public String toString() {
        return "Arena.direct()";
    }
}
