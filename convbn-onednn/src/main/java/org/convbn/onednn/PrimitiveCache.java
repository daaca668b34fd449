package org.convbn.onednn;

import java.util.LinkedHashMap;
import java.util.Map;
import net.jcip.annotations.NotThreadSafe;

/**
 * The primitives a kernel set has made, by key, in least-recently-used order: a network runs the same few hundred
 * shapes every step, so the cache stays at that size; a process that feeds ever new shapes (another resolution per
 * call) frees the least recently used primitive beyond {@code capacity} instead of growing without bound.
 */
@NotThreadSafe
final class PrimitiveCache {
    private final int capacity;
    private final LinkedHashMap<Object, Dnnl.Prepared> entries;

    /** A kernel call holds up to this many primitives at once (a conv's backward: data, weights, a reorder). */
    static final int MIN_CAPACITY = 4;

    /** @param capacity primitives kept at most, &gt;= {@value #MIN_CAPACITY} so that none in use is freed */
    PrimitiveCache(int capacity) {
        if (capacity < MIN_CAPACITY) {
            throw new IllegalArgumentException("capacity: expected >= " + MIN_CAPACITY + ", got " + capacity);
        }
        this.capacity = capacity;
        this.entries = new LinkedHashMap<>(64, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<Object, Dnnl.Prepared> eldest) {
                if (size() > PrimitiveCache.this.capacity) {
                    eldest.getValue().close();
                    return true;
                }
                return false;
            }
        };
    }

    /** @return the primitive under key, or null */
    Dnnl.Prepared get(Object key) {
        return entries.get(key);
    }

    /** Keeps p under key (freeing the least recently used primitive when full). */
    void put(Object key, Dnnl.Prepared p) {
        Dnnl.Prepared old = entries.put(key, p);
        if (old != null && old != p) {
            old.close();
        }
    }

    /** @return primitives kept */
    int size() {
        return entries.size();
    }

    /** Frees every primitive kept. */
    void clear() {
        entries.values().forEach(Dnnl.Prepared::close);
        entries.clear();
    }
}
