package org.convbn.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/** Round trips, widening of F16/BF16, and every rejection of a hostile file. */
class SafetensorsTest {

    @Test
    void roundTripIsBitExact(@TempDir Path dir) throws IOException {
        Map<String, INDArray> t = new LinkedHashMap<>();
        t.put("conv.weight", Nd4j.randn(DataType.FLOAT, 4, 3, 3, 3));
        t.put("bn.running_var", Nd4j.createFromArray(1.5, -0.0, Double.MIN_VALUE, Double.MAX_VALUE));
        INDArray special = Nd4j.createFromArray(Float.NaN, Float.POSITIVE_INFINITY, -0.0f, Float.MIN_VALUE);
        t.put("special", special);
        t.put("scalar", Nd4j.scalar(3.25f));
        // torchvision's BN counters: I64 scalars.
        t.put("bn.num_batches_tracked", Nd4j.scalar(Long.MAX_VALUE - 3));
        t.put("counts", Nd4j.createFromArray(-1L, 0L, 1L << 40).reshape(3, 1));
        t.put("empty", Nd4j.create(DataType.FLOAT, 0, 5));
        t.put(
                "view",
                Nd4j.arange(12)
                        .castTo(DataType.FLOAT)
                        .reshape(3, 4)
                        .get(NDArrayIndex.all(), NDArrayIndex.interval(1, 3)));
        Path file = dir.resolve("x.safetensors");
        Safetensors.write(file, t, Map.of("format", "pt"));
        Safetensors.Contents back = Safetensors.read(file);
        assertEquals(t.keySet(), back.tensors().keySet());
        assertEquals(Map.of("format", "pt"), back.metadata());
        for (String name : t.keySet()) {
            INDArray a = t.get(name);
            INDArray b = back.tensors().get(name);
            assertArrayEquals(a.shape(), b.shape(), name);
            assertEquals(a.dataType(), b.dataType(), name);
            if (a.length() > 0) {
                assertArrayEquals(bits(a), bits(b), name + " bit for bit");
            }
        }
        assertArrayEquals(Files.readAllBytes(file), Safetensors.encode(t, Map.of("format", "pt")), "deterministic");
        long headerLength = ByteBuffer.wrap(Files.readAllBytes(file), 0, 8)
                .order(ByteOrder.LITTLE_ENDIAN)
                .getLong();
        assertEquals(0, headerLength % 8, "header padded so that the data is 8-byte aligned");
    }

    private static long[] bits(INDArray a) {
        INDArray c = a.dup('c');
        long[] out = new long[(int) c.length()];
        if (c.dataType() == DataType.FLOAT) {
            float[] f = c.data().asFloat();
            for (int i = 0; i < out.length; i++) {
                out[i] = Float.floatToRawIntBits(f[i]);
            }
        } else {
            double[] d = c.data().asDouble();
            for (int i = 0; i < out.length; i++) {
                out[i] = Double.doubleToRawLongBits(d[i]);
            }
        }
        return out;
    }

    @Test
    void readsTheReferenceLayoutAndWidensHalfPrecision() throws IOException {
        // F16: 1.0, -2.0, 65504, 2^-24 (smallest subnormal), +inf; BF16: 1.0, -3.0
        byte[] f16 = le16(0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00);
        byte[] bf16 = le16(0x3F80, 0xC040);
        String json = "{\"h\":{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[0,10]},"
                + "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[10,14]}}";
        Safetensors.Contents c = Safetensors.read(file(json, concat(f16, bf16)));
        assertArrayEquals(
                new float[] {1f, -2f, 65504f, (float) Math.pow(2, -24), Float.POSITIVE_INFINITY},
                c.tensors().get("h").toFloatVector());
        assertArrayEquals(new float[] {1f, -3f}, c.tensors().get("b").toFloatVector());
        assertEquals(DataType.FLOAT, c.tensors().get("h").dataType());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(
            delimiter = '|',
            value = {
                "not an object| [1,2] | 0 | header: expected a JSON object",
                "invalid json| {\"a\": | 0 | invalid JSON",
                "duplicate key| {\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}} | 8 | invalid JSON",
                "entry not object| {\"a\":3} | 0 | tensor 'a': expected an object",
                "missing field| {\"a\":{\"dtype\":\"F32\",\"shape\":[1]}} | 4 | expected exactly the fields",
                "extra field| {\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}} | 4 | expected exactly the fields",
                "unsupported dtype| {\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,8]}} | 8 | dtype expected one of",
                "dtype not string| {\"a\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}} | 4 | dtype expected a string",
                "negative dim| {\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}} | 4 | shape: expected non-negative integers",
                "fractional dim| {\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}} | 4 | shape: expected non-negative integers",
                "huge dim| {\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}} | 4 | shape: expected non-negative integers",
                "overflowing shape| {\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}} | 4 | too many elements",
                "too many elements| {\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296],\"data_offsets\":[0,4]}} | 4 | expected at most",
                "one offset| {\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}} | 4 | data_offsets: expected 2",
                "begin after end| {\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}} | 4 | begin <= end",
                "size mismatch| {\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}} | 4 | expected 8 for F32",
                "overlap| {\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}} | 8 | overlap tensor",
                "hole| {\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}} | 8 | a hole of 4 bytes",
                "trailing bytes| {\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} | 12 | 8 trailing bytes",
                "truncated| {\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}} | 8 | truncated",
                "metadata not strings| {\"__metadata__\":{\"k\":1}} | 0 | expected a string",
                "metadata not object| {\"__metadata__\":[]} | 0 | expected an object of strings",
                "empty name| {\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} | 4 | non-empty",
            })
    void hostileHeadersAreRejected(String what, String json, int dataBytes, String message) {
        SafetensorsException e = assertThrows(
                SafetensorsException.class, () -> Safetensors.read(file(json.strip(), new byte[dataBytes])), what);
        assertTrue(
                e.getMessage().contains(message.strip()),
                () -> what + ": '" + e.getMessage() + "' lacks '" + message.strip() + "'");
    }

    @Test
    void hostileFramingIsRejected() {
        assertMessage(new byte[5], "expected at least 8 bytes");
        assertMessage(
                ByteBuffer.allocate(16)
                        .order(ByteOrder.LITTLE_ENDIAN)
                        .putLong(Long.MAX_VALUE)
                        .array(),
                "header length");
        assertMessage(
                ByteBuffer.allocate(16)
                        .order(ByteOrder.LITTLE_ENDIAN)
                        .putLong(-1)
                        .array(),
                "18446744073709551615");
        assertMessage(
                ByteBuffer.allocate(16)
                        .order(ByteOrder.LITTLE_ENDIAN)
                        .putLong(9)
                        .array(),
                "header length");
        byte[] badUtf8 = ByteBuffer.allocate(12)
                .order(ByteOrder.LITTLE_ENDIAN)
                .putLong(4)
                .put(new byte[] {'{', (byte) 0xC3, (byte) 0x28, '}'})
                .array();
        assertMessage(badUtf8, "invalid UTF-8");
    }

    private static void assertMessage(byte[] bytes, String fragment) {
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> Safetensors.read(bytes));
        assertTrue(e.getMessage().contains(fragment), () -> "'" + e.getMessage() + "' lacks '" + fragment + "'");
    }

    @Test
    void writerRefusesWhatItCannotRepresent(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("x.safetensors");
        Files.writeString(file, "previous");
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> Safetensors.write(file, Map.of("ints", Nd4j.createFromArray(1, 2, 3)), Map.of()));
        assertTrue(e.getMessage().contains("expected FLOAT, DOUBLE or LONG, got INT"), e.getMessage());
        assertThrows(
                IllegalArgumentException.class,
                () -> Safetensors.write(file, Map.of("__metadata__", Nd4j.scalar(1f)), Map.of()));
        assertEquals("previous", Files.readString(file), "a refused write leaves the old file");
        try (var files = Files.list(dir)) {
            assertEquals(1, files.count(), "and no temporary file");
        }
    }

    static byte[] file(String json, byte[] data) {
        byte[] header = json.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(8 + header.length + data.length)
                .order(ByteOrder.LITTLE_ENDIAN)
                .putLong(header.length)
                .put(header)
                .put(data)
                .array();
    }

    private static byte[] le16(int... values) {
        ByteBuffer b = ByteBuffer.allocate(2 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : values) {
            b.putShort((short) v);
        }
        return b.array();
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = new byte[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
