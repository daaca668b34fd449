package org.convbn.nd4j.kernel;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import net.jcip.annotations.Immutable;
import net.jcip.annotations.NotThreadSafe;
import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * An arena that keeps its memory between uses: arrays are carved from large chunks of native memory (one set per
 * data type) by best fit, and a released array's block goes back to its chunk, merged with free neighbours. A
 * network's step asks for the same sizes in the same order every time, so after the first step every request is
 * served from the chunks: no native allocation, no fresh pages. Blocks of any size share the chunks, so the memory
 * held follows the largest number of bytes live at once (a step frees the deepest activations first and the
 * gradients of the shallow layers reuse their space), not the sum over sizes.
 *
 * <p>Arrays are 'c'-ordered views into a chunk, aligned to 64 bytes. Chunks are allocated outside any ND4J workspace,
 * uninitialised (pages become resident when first written: {@link Stats#touchedBytes()}), and freed by
 * {@link #trim()} (those with nothing leased) or {@link #close()} (all).
 *
 * <p>Strict: releasing an array that is not leased from this arena (never handed out, or released already) throws,
 * which catches double frees and tensors that escaped their owner. Not thread-safe.
 */
@NotThreadSafe
public final class PooledArena implements Arena, AutoCloseable {
    /**
     * Bytes of a chunk; larger requests get a chunk of their own size. Large, so that few blocks straddle a chunk's
     * end (a ResNet-50 step at batch 8 held 3-5% more with 32 MiB chunks); the part of a chunk never handed out is
     * never written, so it is reserved address space, not resident memory.
     */
    public static final long CHUNK_BYTES = 128L << 20;
    /** Alignment of every block, in bytes (a cache line; what oneDNN prefers). */
    private static final long ALIGN_BYTES = 64;

    /**
     * Counters of an arena.
     *
     * @param reservedBytes bytes of every chunk the arena holds
     * @param touchedBytes bytes of the chunks ever handed out (the rest of a chunk has never been written, so is not
     *                     resident): what the arena adds to the process's resident memory
     * @param leasedBytes bytes handed out and not yet released
     * @param peakLeasedBytes the largest {@code leasedBytes} since creation or {@link #resetPeak()}
     * @param buffersCreated chunks allocated from the system since creation
     */
    @Immutable
    public record Stats(
            long reservedBytes, long touchedBytes, long leasedBytes, long peakLeasedBytes, long buffersCreated) {}

    /** A run of a chunk, in elements. */
    private record Block(Chunk chunk, long offset, long length) {}

    private static final class Chunk {
        final DataBuffer buffer;
        final long length;
        final int id;
        /** Free blocks by offset, for merging neighbours. */
        final TreeMap<Long, Block> free = new TreeMap<>();
        /** Leased blocks by offset. */
        final Map<Long, Block> leased = new HashMap<>();
        /** The runs ever handed out, merged (start -> end): written, so resident. */
        final TreeMap<Long, Long> touched = new TreeMap<>();

        /** Adds the run {@code [from, to)} to {@link #touched}; @return the elements not touched before */
        long touch(long from, long to) {
            long added = to - from;
            long start = from;
            long end = to;
            Map.Entry<Long, Long> before = touched.floorEntry(from);
            if (before != null && before.getValue() >= from) {
                added -= Math.min(before.getValue(), to) - from;
                start = before.getKey();
                end = Math.max(end, before.getValue());
                touched.remove(before.getKey());
            }
            for (Map.Entry<Long, Long> next = touched.ceilingEntry(from);
                    next != null && next.getKey() <= to;
                    next = touched.ceilingEntry(from)) {
                added -= Math.max(0, Math.min(next.getValue(), to) - next.getKey());
                end = Math.max(end, next.getValue());
                touched.remove(next.getKey());
            }
            touched.put(start, end);
            return added;
        }

        long touchedLength() {
            long sum = 0;
            for (Map.Entry<Long, Long> e : touched.entrySet()) {
                sum += e.getValue() - e.getKey();
            }
            return sum;
        }

        Chunk(DataBuffer buffer, long length, int id) {
            this.buffer = buffer;
            this.length = length;
            this.id = id;
        }
    }

    /** The chunks and free blocks of one data type. */
    private static final class Pool {
        final List<Chunk> chunks = new ArrayList<>();
        /** Free blocks by length (then chunk and offset), for best fit; a probe has no chunk and sorts first. */
        final TreeSet<Block> bySize = new TreeSet<>(Comparator.comparingLong(Block::length)
                .thenComparingInt((Block b) -> b.chunk() == null ? -1 : b.chunk().id)
                .thenComparingLong(Block::offset));
    }

    private final Map<DataType, Pool> pools = new EnumMap<>(DataType.class);
    private final Map<DataBuffer, Chunk> chunkOf = new IdentityHashMap<>();
    private long reservedBytes;
    private long touchedBytes;
    private long leasedBytes;
    private long peakLeasedBytes;
    private long buffersCreated;
    private int nextChunkId;
    private boolean closed;

    PooledArena() {}

    @Override
    public INDArray allocate(DataType type, long... shape) {
        if (closed) {
            throw new IllegalStateException("allocate: this arena is closed");
        }
        long length = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("shape: expected non-negative sizes, got " + Arrays.toString(shape));
            }
            length = Math.multiplyExact(length, d);
        }
        if (length == 0) {
            return Nd4j.create(type, shape); // nothing to pool; release() skips empty arrays
        }
        long align = Math.max(1, ALIGN_BYTES / type.width());
        long rounded = (length + align - 1) / align * align;
        Pool pool = pools.computeIfAbsent(type, t -> new Pool());
        Block fit = pool.bySize.ceiling(new Block(null, -1, rounded));
        if (fit == null) {
            Chunk chunk = newChunk(pool, type, Math.max(rounded, CHUNK_BYTES / type.width()));
            fit = chunk.free.firstEntry().getValue();
        }
        Block block = take(pool, fit, rounded);
        Chunk c = block.chunk();
        c.leased.put(block.offset(), block);
        touchedBytes += c.touch(block.offset(), block.offset() + block.length()) * type.width();
        leasedBytes += block.length() * type.width();
        peakLeasedBytes = Math.max(peakLeasedBytes, leasedBytes);
        return Nd4j.create(c.buffer, shape, Nd4j.getStrides(shape, 'c'), block.offset(), 'c', type);
    }

    /** Removes {@code free} from the free lists and returns its first {@code length} elements (the rest stays free). */
    private static Block take(Pool pool, Block free, long length) {
        pool.bySize.remove(free);
        free.chunk().free.remove(free.offset());
        if (free.length() > length) {
            Block rest = new Block(free.chunk(), free.offset() + length, free.length() - length);
            pool.bySize.add(rest);
            rest.chunk().free.put(rest.offset(), rest);
        }
        return new Block(free.chunk(), free.offset(), length);
    }

    private Chunk newChunk(Pool pool, DataType type, long length) {
        DataBuffer buffer;
        try (MemoryWorkspace ws = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            buffer = Nd4j.getDataBufferFactory().create(type, length, false);
        }
        Chunk c = new Chunk(buffer, length, nextChunkId++);
        Block all = new Block(c, 0, length);
        c.free.put(0L, all);
        pool.bySize.add(all);
        pool.chunks.add(c);
        chunkOf.put(buffer, c);
        buffersCreated++;
        reservedBytes += length * type.width();
        return c;
    }

    @Override
    public void release(INDArray... arrays) {
        for (INDArray a : arrays) {
            if (a == null || a.isEmpty()) {
                continue;
            }
            Chunk c = null;
            for (DataBuffer d = a.data();
                    d != null && c == null;
                    d = d.originalDataBuffer() == d ? null : d.originalDataBuffer()) {
                c = chunkOf.get(d);
            }
            Block block = c == null ? null : c.leased.remove(a.offset());
            if (block == null) {
                throw new IllegalArgumentException("arrays: expected arrays leased from this arena, got one of shape "
                        + Arrays.toString(a.shape()) + " that is not (never handed out, or released "
                        + "already)");
            }
            leasedBytes -= block.length() * a.dataType().width();
            free(pools.get(a.dataType()), block);
        }
    }

    /** Returns a block to its chunk's free list, merged with free neighbours. */
    private static void free(Pool pool, Block block) {
        Chunk c = block.chunk();
        long offset = block.offset();
        long length = block.length();
        Map.Entry<Long, Block> before = c.free.floorEntry(offset);
        if (before != null && before.getValue().offset() + before.getValue().length() == offset) {
            Block b = before.getValue();
            c.free.remove(b.offset());
            pool.bySize.remove(b);
            offset = b.offset();
            length += b.length();
        }
        Block after = c.free.get(block.offset() + block.length());
        if (after != null) {
            c.free.remove(after.offset());
            pool.bySize.remove(after);
            length += after.length();
        }
        Block merged = new Block(c, offset, length);
        c.free.put(offset, merged);
        pool.bySize.add(merged);
    }

    /** @return the arena's counters */
    public Stats stats() {
        return new Stats(reservedBytes, touchedBytes, leasedBytes, peakLeasedBytes, buffersCreated);
    }

    /** Starts a new {@link Stats#peakLeasedBytes()} window at the bytes leased now. */
    public void resetPeak() {
        peakLeasedBytes = leasedBytes;
    }

    /** Frees every chunk that has nothing leased. */
    public void trim() {
        for (Map.Entry<DataType, Pool> e : pools.entrySet()) {
            Pool pool = e.getValue();
            for (Chunk c : new ArrayList<>(pool.chunks)) {
                if (c.leased.isEmpty()) {
                    c.free.values().forEach(pool.bySize::remove);
                    pool.chunks.remove(c);
                    chunkOf.remove(c.buffer);
                    reservedBytes -= c.length * e.getKey().width();
                    touchedBytes -= c.touchedLength() * e.getKey().width();
                    c.buffer.close();
                }
            }
        }
    }

    /** Frees every chunk, leased blocks included: nothing this arena handed out may be used afterwards. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        pools.values().forEach(p -> p.chunks.forEach(c -> c.buffer.close()));
        pools.clear();
        chunkOf.clear();
        reservedBytes = 0;
        touchedBytes = 0;
        leasedBytes = 0;
        closed = true;
    }

    @Override
    public String toString() {
        return "PooledArena" + stats();
    }
}
