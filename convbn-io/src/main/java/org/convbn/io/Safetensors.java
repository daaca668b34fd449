package org.convbn.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import net.jcip.annotations.NotThreadSafe;
import net.jcip.annotations.ThreadSafe;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Reads and writes the safetensors format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
 * mapping each tensor name to {@code {"dtype", "shape", "data_offsets": [begin, end]}} (plus an optional
 * {@code "__metadata__"} map of strings), then the raw little-endian data, offsets relative to its start.
 *
 * <p>Every file is treated as untrusted. The reader rejects, with a {@link SafetensorsException} naming what is
 * wrong: a file shorter than 8 bytes; a header length beyond {@link #MAX_HEADER_BYTES} or the file; a header that
 * is not UTF-8, not JSON, not an object, or has duplicate keys; a tensor entry that is not an object, lacks or
 * adds fields, has a dtype other than F64/F32/F16/BF16/I64, a shape that is not a list of non-negative integers or
 * whose element count overflows, offsets that are not two integers with begin &lt;= end, or a byte length other
 * than elements x dtype size; a metadata value that is not a string; tensors that overlap or leave holes; data
 * that does not end exactly at the last tensor (trailing bytes) or ends before it (truncation); a tensor over
 * 2^31 - 1 elements. It allocates only after all of this holds, so no size it allocates exceeds the file.
 *
 * <p>Writes go to a temporary file beside the target and are renamed into place, so a failure never leaves a
 * half-written file.
 */
@ThreadSafe
public final class Safetensors {
    /** The largest header accepted, as in the reference implementation. */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    private static final String METADATA = "__metadata__";
    private static final ObjectMapper MAPPER = new ObjectMapper();

    static {
        MAPPER.enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
        MAPPER.getFactory()
                .setStreamReadConstraints(StreamReadConstraints.builder()
                        .maxStringLength((int) MAX_HEADER_BYTES)
                        .maxNestingDepth(64)
                        .build());
    }

    private Safetensors() {}

    /**
     * The contents of a file.
     *
     * @param tensors by name, in file order: F32, F16 and BF16 as FLOAT arrays, F64 as DOUBLE, I64 as LONG
     * @param metadata the {@code __metadata__} map (empty when absent)
     */
    @NotThreadSafe
    public record Contents(Map<String, INDArray> tensors, Map<String, String> metadata) {
        public Contents {
            tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
            metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
        }
    }

    /** One validated header entry. */
    record Entry(String name, SafetensorsDtype dtype, long[] shape, long begin, long end) {
        long elements() {
            return (end - begin) / dtype.bytes();
        }
    }

    /** The validated header: entries in data order, metadata, and where the data starts. */
    record Header(List<Entry> entries, Map<String, String> metadata, long dataStart) {}

    /** Random access to the bytes of a file or an array. */
    private interface Source {
        long size() throws IOException;

        void read(long position, byte[] into) throws IOException;
    }

    /**
     * @param file a safetensors file, not modified
     * @return its tensors and metadata
     * @throws SafetensorsException naming the file, for any malformed or unsupported content (see the class comment)
     * @throws IOException naming the file, if it cannot be read
     */
    public static Contents read(Path file) throws IOException {
        try {
            return readFile(file);
        } catch (SafetensorsException e) {
            throw new SafetensorsException(file + ": not a valid safetensors file: " + e.getMessage(), e);
        } catch (IOException e) {
            throw new IOException(file + ": cannot be read: " + e, e);
        }
    }

    private static Contents readFile(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            return read(new Source() {
                @Override
                public long size() throws IOException {
                    return ch.size();
                }

                @Override
                public void read(long position, byte[] into) throws IOException {
                    ByteBuffer buf = ByteBuffer.wrap(into);
                    while (buf.hasRemaining()) {
                        if (ch.read(buf, position + buf.position()) < 0) {
                            throw new SafetensorsException(
                                    "file: truncated while reading at byte " + (position + buf.position()));
                        }
                    }
                }
            });
        }
    }

    /**
     * @param bytes a whole safetensors file, not modified
     * @return its tensors and metadata
     * @throws SafetensorsException for any malformed or unsupported content
     */
    public static Contents read(byte[] bytes) throws SafetensorsException {
        try {
            return read(new Source() {
                @Override
                public long size() {
                    return bytes.length;
                }

                @Override
                public void read(long position, byte[] into) {
                    System.arraycopy(bytes, (int) position, into, 0, into.length);
                }
            });
        } catch (SafetensorsException e) {
            throw e;
        } catch (IOException e) {
            throw new SafetensorsException("unexpected: " + e, e);
        }
    }

    private static Contents read(Source src) throws IOException {
        Header header = parseHeader(src);
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        for (Entry e : header.entries()) {
            byte[] raw = new byte[(int) (e.end() - e.begin())];
            src.read(header.dataStart() + e.begin(), raw);
            tensors.put(e.name(), toArray(e, raw));
        }
        return new Contents(tensors, header.metadata());
    }

    /** Reads and validates the header against the source's size; allocates at most the header's bytes. */
    static Header parseHeader(Source src) throws IOException {
        long size = src.size();
        if (size < 8) {
            throw new SafetensorsException("file: expected at least 8 bytes (the header length), got " + size);
        }
        byte[] lenBytes = new byte[8];
        src.read(0, lenBytes);
        long headerLen =
                ByteBuffer.wrap(lenBytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
        if (headerLen < 2 || headerLen > MAX_HEADER_BYTES || headerLen > size - 8) {
            throw new SafetensorsException("header length (the first 8 bytes): expected 2.."
                    + Math.min(MAX_HEADER_BYTES, size - 8) + " bytes (at most " + MAX_HEADER_BYTES + " and within the "
                    + size + "-byte file), got " + Long.toUnsignedString(headerLen));
        }
        byte[] json = new byte[(int) headerLen];
        src.read(8, json);
        JsonNode root = parseJson(json);
        long dataLength = size - 8 - headerLen;
        List<Entry> entries = new ArrayList<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        Iterator<Map.Entry<String, JsonNode>> fields = root.fields();
        while (fields.hasNext()) {
            Map.Entry<String, JsonNode> f = fields.next();
            if (f.getKey().equals(METADATA)) {
                metadata.putAll(parseMetadata(f.getValue()));
            } else {
                entries.add(parseEntry(f.getKey(), f.getValue()));
            }
        }
        checkLayout(entries, dataLength);
        return new Header(entries, metadata, 8 + headerLen);
    }

    private static JsonNode parseJson(byte[] json) throws SafetensorsException {
        String text;
        try {
            CharBuffer chars = StandardCharsets.UTF_8
                    .newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(json));
            text = chars.toString();
        } catch (CharacterCodingException e) {
            throw new SafetensorsException("header: expected UTF-8 JSON, got invalid UTF-8 (" + e + ")");
        }
        JsonNode root;
        try {
            root = MAPPER.readTree(text);
        } catch (IOException e) {
            throw new SafetensorsException(
                    "header: expected a JSON object, got invalid JSON: " + firstLine(e.getMessage()));
        }
        if (root == null || !root.isObject()) {
            throw new SafetensorsException(
                    "header: expected a JSON object, got " + (root == null ? "nothing" : root.getNodeType()));
        }
        return root;
    }

    private static Map<String, String> parseMetadata(JsonNode node) throws SafetensorsException {
        if (!node.isObject()) {
            throw new SafetensorsException(METADATA + ": expected an object of strings, got " + node.getNodeType());
        }
        Map<String, String> m = new LinkedHashMap<>();
        Iterator<Map.Entry<String, JsonNode>> it = node.fields();
        while (it.hasNext()) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual()) {
                throw new SafetensorsException(METADATA + "['" + e.getKey() + "']: expected a string, got "
                        + e.getValue().getNodeType());
            }
            m.put(e.getKey(), e.getValue().textValue());
        }
        return m;
    }

    private static Entry parseEntry(String name, JsonNode node) throws SafetensorsException {
        String where = "tensor '" + name + "'";
        if (name.isEmpty()) {
            throw new SafetensorsException("tensor name: expected a non-empty string, got \"\"");
        }
        if (!node.isObject()) {
            throw new SafetensorsException(
                    where + ": expected an object {dtype, shape, data_offsets}, got " + node.getNodeType());
        }
        List<String> keys = new ArrayList<>();
        node.fieldNames().forEachRemaining(keys::add);
        Collections.sort(keys);
        if (!keys.equals(List.of("data_offsets", "dtype", "shape"))) {
            throw new SafetensorsException(
                    where + ": expected exactly the fields [data_offsets, dtype, shape], got " + keys);
        }
        JsonNode dtype = node.get("dtype");
        if (!dtype.isTextual()) {
            throw new SafetensorsException(where + ": dtype expected a string, got " + dtype.getNodeType());
        }
        SafetensorsDtype type = SafetensorsDtype.parse(name, dtype.textValue());
        long[] shape = nonNegativeLongs(where + ": shape", node.get("shape"), -1);
        long[] offsets = nonNegativeLongs(where + ": data_offsets", node.get("data_offsets"), 2);
        if (offsets[0] > offsets[1]) {
            throw new SafetensorsException(
                    where + ": data_offsets expected begin <= end, got " + Arrays.toString(offsets));
        }
        long elements = 1;
        long bytes;
        try {
            for (long d : shape) {
                elements = Math.multiplyExact(elements, d);
            }
            bytes = Math.multiplyExact(elements, type.bytes());
        } catch (ArithmeticException e) {
            throw new SafetensorsException(where + ": shape " + Arrays.toString(shape) + " has too many elements");
        }
        if (elements > Integer.MAX_VALUE || bytes > Integer.MAX_VALUE) {
            throw new SafetensorsException(where + ": expected at most " + Integer.MAX_VALUE + " elements and bytes,"
                    + " got " + elements + " elements of " + type);
        }
        if (offsets[1] - offsets[0] != bytes) {
            throw new SafetensorsException(where + ": data_offsets " + Arrays.toString(offsets) + " span "
                    + (offsets[1] - offsets[0]) + " bytes, expected " + bytes + " for " + type + " shape "
                    + Arrays.toString(shape));
        }
        return new Entry(name, type, shape, offsets[0], offsets[1]);
    }

    private static long[] nonNegativeLongs(String where, JsonNode node, int length) throws SafetensorsException {
        if (!node.isArray() || (length >= 0 && node.size() != length)) {
            throw new SafetensorsException(where + ": expected " + (length >= 0 ? length + " " : "a list of ")
                    + "non-negative integers, got " + node);
        }
        long[] out = new long[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
                throw new SafetensorsException(where + ": expected non-negative integers, got " + v + " at index " + i);
            }
            out[i] = v.longValue();
        }
        return out;
    }

    /** Tensors must tile [0, dataLength) exactly: no overlap, no hole, no trailing bytes, no truncation. */
    private static void checkLayout(List<Entry> entries, long dataLength) throws SafetensorsException {
        List<Entry> sorted = new ArrayList<>(entries);
        sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        long at = 0;
        String previous = null;
        for (Entry e : sorted) {
            if (e.begin() < at) {
                throw new SafetensorsException("tensor '" + e.name() + "': data_offsets [" + e.begin() + ", " + e.end()
                        + "] overlap tensor '" + previous + "', which ends at " + at);
            }
            if (e.begin() > at) {
                throw new SafetensorsException("tensor '" + e.name() + "': data_offsets begin at " + e.begin()
                        + ", expected " + at + " (a hole of " + (e.begin() - at) + " bytes)");
            }
            at = e.end();
            previous = e.name();
        }
        if (at > dataLength) {
            throw new SafetensorsException("file: truncated: tensor '" + previous + "' ends at data byte " + at
                    + ", but the data section has " + dataLength + " bytes");
        }
        if (at < dataLength) {
            throw new SafetensorsException("file: expected the data to end at byte " + at + " after the last tensor, "
                    + "got " + (dataLength - at) + " trailing bytes");
        }
    }

    private static INDArray toArray(Entry e, byte[] raw) {
        ByteBuffer buf = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        int n = (int) e.elements();
        long[] shape = e.shape();
        if (e.dtype() == SafetensorsDtype.F64) {
            double[] v = new double[n];
            buf.asDoubleBuffer().get(v);
            return n == 0
                    ? Nd4j.create(DataType.DOUBLE, shape)
                    : shape.length == 0 ? Nd4j.scalar(v[0]) : Nd4j.create(v, shape, DataType.DOUBLE);
        }
        if (e.dtype() == SafetensorsDtype.I64) {
            long[] v = new long[n];
            buf.asLongBuffer().get(v);
            return n == 0
                    ? Nd4j.create(DataType.LONG, shape)
                    : shape.length == 0
                            ? Nd4j.scalar(v[0])
                            : Nd4j.createFromArray(v).reshape(shape);
        }
        float[] v = new float[n];
        switch (e.dtype()) {
            case F32 -> buf.asFloatBuffer().get(v);
            case F16 -> {
                for (int i = 0; i < n; i++) {
                    v[i] = HalfFloats.halfToFloat(buf.getShort(2 * i));
                }
            }
            case BF16 -> {
                for (int i = 0; i < n; i++) {
                    v[i] = Float.intBitsToFloat((buf.getShort(2 * i) & 0xffff) << 16);
                }
            }
            default -> throw new IllegalStateException("unreachable: " + e.dtype());
        }
        return n == 0
                ? Nd4j.create(DataType.FLOAT, shape)
                : shape.length == 0 ? Nd4j.scalar(v[0]) : Nd4j.create(v, shape, DataType.FLOAT);
    }

    /**
     * Writes tensors (FLOAT as F32, DOUBLE as F64, LONG as I64, in map order) and metadata, atomically, one tensor at
     * a time (no file-sized buffer: a checkpoint costs the memory of its largest tensor).
     *
     * @param file the target, replaced if present (see {@link AtomicFiles#write})
     * @param tensors by name, not modified
     * @param metadata strings stored under {@code __metadata__} (omitted when empty), not modified
     * @throws IllegalArgumentException for another data type, an empty name or the reserved name __metadata__
     * @throws IOException naming the file if writing fails (the target is then untouched)
     */
    public static void write(Path file, Map<String, INDArray> tensors, Map<String, String> metadata)
            throws IOException {
        byte[] header = header(tensors, metadata);
        AtomicFiles.write(file, out -> writeTo(out, header, tensors));
    }

    /** @return the whole file's bytes, as {@link #write} writes them */
    public static byte[] encode(Map<String, INDArray> tensors, Map<String, String> metadata) {
        byte[] header = header(tensors, metadata);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            writeTo(out, header, tensors);
        } catch (IOException e) {
            throw new UncheckedIOException("unreachable: an in-memory stream failed", e);
        }
        return out.toByteArray();
    }

    /** The header length, the header padded to 8 bytes, then every tensor's data in map order. */
    private static void writeTo(OutputStream out, byte[] header, Map<String, INDArray> tensors) throws IOException {
        out.write(header);
        for (INDArray a : tensors.values()) {
            out.write(littleEndian(a));
        }
    }

    /** @return the 8-byte header length and the JSON header, padded with spaces to keep the data 8-byte aligned */
    private static byte[] header(Map<String, INDArray> tensors, Map<String, String> metadata) {
        ObjectNode header = MAPPER.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode m = header.putObject(METADATA);
            metadata.forEach(m::put);
        }
        long offset = 0;
        for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
            String name = e.getKey();
            if (name.isEmpty() || name.equals(METADATA)) {
                throw new IllegalArgumentException(
                        "tensors: expected non-empty names other than " + METADATA + ", got '" + name + "'");
            }
            INDArray a = e.getValue();
            String dtype =
                    switch (a.dataType()) {
                        case FLOAT -> "F32";
                        case DOUBLE -> "F64";
                        case LONG -> "I64";
                        default ->
                            throw new IllegalArgumentException("tensors['" + name + "']: expected FLOAT, DOUBLE or "
                                    + "LONG, got " + a.dataType());
                    };
            ObjectNode t = header.putObject(name);
            t.put("dtype", dtype);
            var shape = t.putArray("shape");
            for (long d : a.shape()) {
                shape.add(d);
            }
            long bytes = a.length() * a.dataType().width();
            t.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] json;
        try {
            json = MAPPER.writeValueAsBytes(header);
        } catch (IOException e) {
            throw new IllegalStateException("cannot encode the header: " + e, e);
        }
        int padded = (json.length + 7) / 8 * 8; // keep the data 8-byte aligned, as the reference writer does
        ByteBuffer out = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(padded).put(json);
        for (int i = json.length; i < padded; i++) {
            out.put((byte) ' ');
        }
        return out.array();
    }

    /** @return the array's elements in little-endian order; its type was checked by {@link #header} */
    private static byte[] littleEndian(INDArray a) {
        INDArray c = a.isView() || a.ordering() != 'c' ? a.dup('c') : a;
        int n = Math.toIntExact(c.length());
        ByteBuffer b = ByteBuffer.allocate(n * c.dataType().width()).order(ByteOrder.LITTLE_ENDIAN);
        switch (c.dataType()) {
            case FLOAT -> b.asFloatBuffer().put(n == 0 ? new float[0] : c.data().asFloat(), 0, n);
            case DOUBLE ->
                b.asDoubleBuffer().put(n == 0 ? new double[0] : c.data().asDouble(), 0, n);
            case LONG -> b.asLongBuffer().put(n == 0 ? new long[0] : c.data().asLong(), 0, n);
            default -> throw new IllegalStateException("header() refuses " + c.dataType());
        }
        return b.array();
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}
