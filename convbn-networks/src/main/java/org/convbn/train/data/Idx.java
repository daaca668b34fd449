package org.convbn.train.data;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;
import net.jcip.annotations.NotThreadSafe;
import net.jcip.annotations.ThreadSafe;

/**
 * Reads and writes IDX files (the format of MNIST and Fashion-MNIST) of unsigned bytes, plain or gzip-compressed: a 4-byte magic
 * {@code 0x00 0x00 0x08 rank}, {@code rank} big-endian 32-bit dimensions, then the values in row-major order.
 */
@ThreadSafe
public final class Idx {
    /** The third magic byte of unsigned-byte data. */
    private static final int UNSIGNED_BYTE = 0x08;
    /** More values than this are refused (a corrupt dimension would otherwise allocate gigabytes). */
    private static final long MAX_VALUES = Integer.MAX_VALUE - 8;

    private Idx() {}

    /**
     * An IDX array of unsigned bytes.
     *
     * @param shape the dimensions
     * @param values the values in row-major order, as stored (read them with {@code & 0xFF})
     */
    @NotThreadSafe
    public record Array(int[] shape, byte[] values) {
        /** @return the value at a flat index, 0..255 */
        public int get(long index) {
            return values[Math.toIntExact(index)] & 0xFF;
        }
    }

    /**
     * Writes an IDX file of unsigned bytes, gzip-compressed when its name ends with ".gz" (e.g. a subset of a dataset
     * for tests).
     *
     * @param file the file to write (replaced if it exists)
     * @param shape the dimensions, each &gt;= 0, not modified
     * @param values {@code product(shape)} values in row-major order, not modified
     * @throws IllegalArgumentException if the values do not fill the shape
     */
    public static void write(Path file, int[] shape, byte[] values) throws IOException {
        long count = 1;
        for (int d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("shape: expected dimensions >= 0, got " + Arrays.toString(shape));
            }
            count *= d;
        }
        if (shape.length < 1 || shape.length > 255 || count != values.length) {
            throw new IllegalArgumentException("values: expected " + count + " values for shape "
                    + Arrays.toString(shape) + " (rank 1..255), got " + values.length);
        }
        try (OutputStream raw = Files.newOutputStream(file);
                OutputStream o = file.getFileName().toString().endsWith(".gz") ? new GZIPOutputStream(raw) : raw;
                DataOutputStream out = new DataOutputStream(new BufferedOutputStream(o))) {
            out.writeInt(0x00000800 | shape.length);
            for (int d : shape) {
                out.writeInt(d);
            }
            out.write(values);
        }
    }

    /**
     * @param file an IDX file, gzip-compressed when its name ends with ".gz"
     * @return its contents
     * @throws NoSuchFileException if the file does not exist
     * @throws IOException naming the file and what is wrong: a bad magic, a value type other than unsigned byte, a
     *                     negative or too large dimension, fewer bytes than the dimensions promise, or trailing bytes
     */
    public static Array read(Path file) throws IOException {
        if (!Files.exists(file)) {
            throw new NoSuchFileException(file.toString());
        }
        try (InputStream raw = Files.newInputStream(file);
                InputStream in = file.getFileName().toString().endsWith(".gz")
                        ? new GZIPInputStream(new BufferedInputStream(raw))
                        : new BufferedInputStream(raw);
                DataInputStream data = new DataInputStream(in)) {
            int magic;
            try {
                magic = data.readInt();
            } catch (EOFException e) {
                throw new IOException(file + ": expected an IDX header of 4 bytes, got a shorter file", e);
            }
            if ((magic >>> 16) != 0 || ((magic >>> 8) & 0xFF) != UNSIGNED_BYTE || (magic & 0xFF) == 0) {
                throw new IOException(file + ": expected IDX magic 0x000008nn (unsigned bytes, rank nn >= 1), got 0x"
                        + String.format("%08x", magic));
            }
            int rank = magic & 0xFF;
            int[] shape = new int[rank];
            long count = 1;
            for (int d = 0; d < rank; d++) {
                try {
                    shape[d] = data.readInt();
                } catch (EOFException e) {
                    throw new IOException(file + ": expected " + rank + " dimensions, the file ends after " + d, e);
                }
                if (shape[d] < 0) {
                    throw new IOException(file + ": dimension " + d + ": expected >= 0, got " + shape[d]);
                }
                count *= shape[d];
                if (count > MAX_VALUES) {
                    throw new IOException(file + ": expected at most " + MAX_VALUES + " values, the dimensions "
                            + Arrays.toString(Arrays.copyOf(shape, d + 1)) + " give more");
                }
            }
            byte[] values = new byte[(int) count];
            int read = data.readNBytes(values, 0, values.length);
            if (read != values.length) {
                throw new IOException(file + ": expected " + values.length + " values for shape "
                        + Arrays.toString(shape) + ", the file holds " + read);
            }
            if (data.read() != -1) {
                throw new IOException(
                        file + ": expected the file to end after " + values.length + " values, got trailing bytes");
            }
            return new Array(shape, values);
        }
    }
}
