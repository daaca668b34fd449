package org.convbn.nd4j.kernel;

import net.jcip.annotations.NotThreadSafe;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The owner of the native memory of the tensors a computation makes: kernels take their outputs and temporaries
 * from an arena, and whoever holds a tensor gives it back with {@link #release} when done, instead of leaving it
 * to the garbage collector or freeing it by hand.
 *
 * <p>Two kinds: {@link #pooled()} keeps released buffers and hands them out again, so that a network's steady-state
 * step allocates no new native memory and touches no fresh pages; {@link #direct()} allocates through ND4J on every
 * call (inside the caller's ND4J workspace scope, if any) and frees on release, for frameworks such as DL4J that own
 * memory with workspaces of their own. An arena is not thread-safe: one thread uses it at a time.
 */
@NotThreadSafe
public interface Arena {

    /**
     * @param type the data type
     * @param shape the shape, 'c' order
     * @return a new array with unspecified contents, owned by the caller until {@link #release}d
     */
    INDArray allocate(DataType type, long... shape);

    /**
     * Gives arrays back. Each must come from this arena's {@link #allocate} (or be a view of such an array that
     * covers it from its first element), must not have been released already, and must not be used afterwards;
     * nulls are skipped.
     *
     * @param arrays modified: returned to the arena
     * @throws IllegalArgumentException for an array this arena did not hand out, or one already released
     */
    void release(INDArray... arrays);

    /** @return a new arena that keeps released buffers for reuse (see {@link PooledArena}) */
    static PooledArena pooled() {
        return new PooledArena();
    }

    /** @return the arena that allocates through ND4J on every call and frees on release */
    static Arena direct() {
        return DirectArena.INSTANCE;
    }
}
