package org.convbn.nd4j.kernel;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Map;

import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * An arena that keeps the buffers it is given back and hands them out again for requests of the same data type
 * and element count. A network's step asks for the same sizes in the same order every time, so after the first step
 * every request is served from the pool: no native allocation, no fresh pages, and the memory held is the largest
 * number of buffers of each size that were live at once. Buffers are allocated outside any ND4J workspace and
 * freed by {@link #trim()} (the unused ones) or {@link #close()} (all).
 *
 * <p>Strict: releasing an array that is not leased from this arena (never handed out, or released already) throws,
 * which catches double frees and tensors that escaped their owner. Not thread-safe.
 */
public final class PooledArena implements Arena, AutoCloseable {
    private record SizeClass(DataType type, long length) {
    }

    /**
     * Counters of an arena.
     *
     * @param reservedBytes bytes of every buffer the arena holds, leased or free
     * @param leasedBytes bytes handed out and not yet released
     * @param peakLeasedBytes the largest {@code leasedBytes} since creation or {@link #resetPeak()}
     * @param buffersCreated buffers allocated from the system since creation
     */
    public record Stats(long reservedBytes, long leasedBytes, long peakLeasedBytes, long buffersCreated) {
    }

    private final Map<SizeClass, ArrayDeque<DataBuffer>> free = new HashMap<>();
    private final Map<DataBuffer, SizeClass> leased = new IdentityHashMap<>();
    private long reservedBytes;
    private long leasedBytes;
    private long peakLeasedBytes;
    private long buffersCreated;
    private boolean closed;

    PooledArena() {
    }

    @Override
    public INDArray allocate(DataType type, long... shape) {
        if (closed) {
            throw new IllegalStateException("allocate: this arena is closed");
        }
        long length = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("shape: expected non-negative sizes, got "
                        + java.util.Arrays.toString(shape));
            }
            length = Math.multiplyExact(length, d);
        }
        if (length == 0) {
            return Nd4j.create(type, shape); // nothing to pool; release() skips empty arrays
        }
        SizeClass key = new SizeClass(type, length);
        ArrayDeque<DataBuffer> pool = free.get(key);
        DataBuffer buffer = pool == null ? null : pool.pollLast();
        if (buffer == null) {
            buffer = Nd4j.createBufferDetached(new long[] {key.length()}, type);
            buffersCreated++;
            reservedBytes += bytes(key);
        }
        leased.put(buffer, key);
        leasedBytes += bytes(key);
        peakLeasedBytes = Math.max(peakLeasedBytes, leasedBytes);
        return Nd4j.create(buffer, shape);
    }

    @Override
    public void release(INDArray... arrays) {
        for (INDArray a : arrays) {
            if (a == null || a.isEmpty()) {
                continue;
            }
            DataBuffer buffer = a.data();
            SizeClass key = leased.remove(buffer);
            if (key == null && buffer.originalDataBuffer() != null) {
                buffer = buffer.originalDataBuffer();
                key = leased.remove(buffer);
            }
            if (key == null) {
                throw new IllegalArgumentException("arrays: expected arrays leased from this arena, got one of shape "
                        + java.util.Arrays.toString(a.shape()) + " that is not (never handed out, or released "
                        + "already)");
            }
            leasedBytes -= bytes(key);
            free.computeIfAbsent(key, k -> new ArrayDeque<>()).addLast(buffer);
        }
    }

    /** @return the arena's counters */
    public Stats stats() {
        return new Stats(reservedBytes, leasedBytes, peakLeasedBytes, buffersCreated);
    }

    /** Starts a new {@link Stats#peakLeasedBytes()} window at the bytes leased now. */
    public void resetPeak() {
        peakLeasedBytes = leasedBytes;
    }

    /** Frees every buffer that is not leased. */
    public void trim() {
        for (Map.Entry<SizeClass, ArrayDeque<DataBuffer>> e : free.entrySet()) {
            for (DataBuffer b : e.getValue()) {
                reservedBytes -= bytes(e.getKey());
                b.close();
            }
        }
        free.clear();
    }

    /** Frees every buffer, leased ones included: nothing this arena handed out may be used afterwards. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        trim();
        leased.keySet().forEach(DataBuffer::close);
        leased.clear();
        reservedBytes = 0;
        leasedBytes = 0;
        closed = true;
    }

    private static long bytes(SizeClass key) {
        return key.length() * key.type().width();
    }

    @Override
    public String toString() {
        return "PooledArena" + stats();
    }
}
