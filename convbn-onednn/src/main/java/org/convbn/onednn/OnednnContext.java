package org.convbn.onednn;

import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DST;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SCRATCHPAD;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SRC;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Supplier;
import net.jcip.annotations.NotThreadSafe;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.reorder;
import org.bytedeco.dnnl.stream;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Layout;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What the sections of {@link OnednnKernels} share: the arena every buffer comes from, the stream, the cache of
 * prepared primitives (by {@link Key}), the record of the implementations that ran, the preferred layout, and the
 * helpers every section uses (dense copies, layout conversions, running a primitive with its scratchpad).
 */
@NotThreadSafe
final class OnednnContext {
    /** Primitives kept at most: a network's distinct shapes need a few hundred (ResNet-50 ~300, EfficientNet ~600). */
    static final int MAX_PRIMITIVES = 4096;

    private static final Logger LOG = LoggerFactory.getLogger(OnednnKernels.class);

    private final Arena arena;
    private final Layout layout;
    private final stream stream = new stream(Dnnl.ENGINE);
    private final PrimitiveCache prepared;
    /** Per primitive kind (e.g. "convolution backward_weights"), the implementations that ran, e.g. "jit:avx2". */
    private final Map<String, Set<String>> implementations = new TreeMap<>();

    private boolean closed;

    /**
     * @param arena where results and temporaries come from
     * @param layout the layout feature maps are kept in where their channel count allows
     */
    OnednnContext(Arena arena, Layout layout) {
        this(arena, layout, MAX_PRIMITIVES);
    }

    /** @param capacity primitives kept at most */
    OnednnContext(Arena arena, Layout layout, int capacity) {
        this.arena = arena;
        this.layout = layout;
        this.prepared = new PrimitiveCache(capacity);
    }

    Arena arena() {
        return arena;
    }

    Layout layout() {
        return layout;
    }

    /** @return the largest block up to the preferred layout's that divides the channels, else NCHW */
    Layout preferredLayout(long channels) {
        return Layout.largestFitting(layout, channels);
    }

    /** @return a copy of the implementations that ran, per primitive kind */
    Map<String, Set<String>> implementations() {
        Map<String, Set<String>> copy = new TreeMap<>();
        implementations.forEach((k, v) -> copy.put(k, new TreeSet<>(v)));
        return copy;
    }

    /**
     * Records the implementation of a primitive about to run for the first time; a reference one (orders of
     * magnitude slower than a jit one) is logged at WARN.
     */
    private void record(Dnnl.Prepared p) {
        p.ran = true;
        if (implementations.computeIfAbsent(p.kind, k -> new TreeSet<>()).add(p.implementation) && p.isReference()) {
            LOG.warn(
                    "oneDNN runs its reference implementation {} for {} ({}): expect it to be slow",
                    p.implementation,
                    p.kind,
                    p.problem);
        }
    }

    /** @return the primitive under key, made by {@code make} and kept when there is none */
    Dnnl.Prepared prepared(Key key, Supplier<Dnnl.Prepared> make) {
        checkOpen();
        Dnnl.Prepared p = prepared.get(key);
        if (p == null) {
            p = make.get();
            prepared.put(key, p);
        }
        return p;
    }

    /** @return the primitive under key, or null */
    Dnnl.Prepared cached(Key key) {
        checkOpen();
        return prepared.get(key);
    }

    /** Keeps p under key. */
    void keep(Key key, Dnnl.Prepared p) {
        prepared.put(key, p);
    }

    void checkOpen() {
        if (closed) {
            throw new IllegalStateException("these oneDNN kernels are closed");
        }
    }

    /** Frees every primitive kept and the stream. Idempotent. */
    void close() {
        if (!closed) {
            closed = true;
            prepared.clear();
            stream.close();
        }
    }

    /** Binds the scratchpad (if the primitive needs one), runs, and gives the scratchpad back. */
    void run(Dnnl.Prepared p) {
        if (!p.ran) {
            record(p);
        }
        INDArray scratch = null;
        if (p.scratchpadBytes > 0) {
            scratch = buffer(p.scratchpadBytes);
            p.bind(DNNL_ARG_SCRATCHPAD, scratch);
        }
        try {
            p.run(stream);
        } finally {
            arena.release(scratch);
        }
    }

    /**
     * @return a float array of at least {@code bytes} bytes from the arena: also for memory oneDNN treats as raw
     *         bytes (scratchpads, pooling workspaces), so that all of a step's buffers share one pool
     */
    INDArray buffer(long bytes) {
        return arena.allocate(DataType.FLOAT, (bytes + 3) / 4);
    }

    /** @return t itself when it is dense ('c' order, contiguous; any offset), else a dense copy from the arena */
    INDArray dense(INDArray t) {
        if (isDense(t)) {
            return t;
        }
        INDArray c = arena.allocate(t.dataType(), t.shape());
        c.assign(t);
        return c;
    }

    /** Dense: 'c' order and contiguous, so that its first element's address and the shape describe it (the address
     *  of a view starts at its offset: {@code data().addressPointer()}). */
    static boolean isDense(INDArray t) {
        if (t.ordering() != 'c' && t.rank() > 1) {
            return false;
        }
        long expected = 1;
        for (int i = t.rank() - 1; i >= 0; i--) {
            if (t.size(i) != 1 && t.stride(i) != expected) {
                return false;
            }
            expected *= t.size(i);
        }
        return true;
    }

    void releaseIfCopy(INDArray copy, INDArray original) {
        if (copy != original) {
            arena.release(copy);
        }
    }

    /** @return t when it is a dense feature map in {@code layout}, else a dense copy in it from the arena */
    INDArray as(INDArray t, Layout layout) {
        return Layout.of(t) == layout ? dense(t) : relayout(t, layout);
    }

    /** @return t (owned) in layout {@code to}, giving t back when converted */
    INDArray moveTo(INDArray t, Layout to) {
        if (Layout.of(t) == to) {
            return t;
        }
        INDArray r = relayout(t, to);
        arena.release(t);
        return r;
    }

    /** @return a new array with t's values in {@code target} (t not modified) */
    INDArray relayout(INDArray t, Layout target) {
        long[] logical = Layout.logicalShape(t);
        Layout from = Layout.of(t);
        INDArray out = arena.allocate(DataType.FLOAT, target.physicalShape(logical));
        INDArray src = dense(t);
        Dnnl.Prepared p = prepared(new Key("reorder", dims(logical), from, target), () -> {
            memory.desc s = Dnnl.featureMap(logical, from);
            memory.desc d = Dnnl.featureMap(logical, target);
            reorder.primitive_desc pd = new reorder.primitive_desc(Dnnl.ENGINE, s, Dnnl.ENGINE, d);
            return new Dnnl.Prepared(new reorder(pd), pd).arg(DNNL_ARG_SRC, s).arg(DNNL_ARG_DST, d);
        });
        p.bind(DNNL_ARG_SRC, src);
        p.bind(DNNL_ARG_DST, out);
        run(p);
        releaseIfCopy(src, t);
        return out;
    }

    /**
     * A cache key: the operation and what fixes its primitive (shapes as lists, layouts, configs, flags), compared by
     * value.
     */
    record Key(String op, List<Object> parts) {
        Key(String op, Object... parts) {
            this(op, List.of(parts));
        }
    }

    /** @return a shape as a list, for keys */
    static List<Long> dims(long[] shape) {
        return Arrays.stream(shape).boxed().toList();
    }
}
