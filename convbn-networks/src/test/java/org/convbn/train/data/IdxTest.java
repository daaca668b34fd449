package org.convbn.train.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The IDX reader on files written here, plain and gzip, and on every kind of damage. */
class IdxTest {
    @TempDir
    Path dir;

    /** An IDX file of unsigned bytes: magic, dimensions, values (then {@code extra} bytes). */
    static byte[] idx(int[] shape, byte[] values, int extra) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.writeInt(0x00000800 | shape.length);
        for (int d : shape) {
            out.writeInt(d);
        }
        out.write(values);
        out.write(new byte[extra]);
        return bytes.toByteArray();
    }

    static Path write(Path file, byte[] content) throws IOException {
        if (file.getFileName().toString().endsWith(".gz")) {
            try (OutputStream o = new GZIPOutputStream(Files.newOutputStream(file))) {
                o.write(content);
            }
        } else {
            Files.write(file, content);
        }
        return file;
    }

    @Test
    void readsPlainAndGzipFiles() throws IOException {
        byte[] values = new byte[2 * 3 * 4];
        for (int i = 0; i < values.length; i++) {
            values[i] = (byte) (i * 11);
        }
        for (String name : new String[] {"a-idx3-ubyte", "a-idx3-ubyte.gz"}) {
            Idx.Array a = Idx.read(write(dir.resolve(name), idx(new int[] {2, 3, 4}, values, 0)));
            assertArrayEquals(new int[] {2, 3, 4}, a.shape());
            assertArrayEquals(values, a.values());
            Path again = dir.resolve("b-" + name);
            Idx.write(again, a.shape(), a.values());
            a = Idx.read(again);
            assertArrayEquals(new int[] {2, 3, 4}, a.shape());
            assertEquals(23 * 11 & 0xFF, a.get(23), "values are unsigned");
            assertArrayEquals(values, a.values());
        }
    }

    @Test
    void damageIsNamed() throws IOException {
        assertThrows(NoSuchFileException.class, () -> Idx.read(dir.resolve("missing")));
        assertThrows(IllegalArgumentException.class, () -> Idx.write(dir.resolve("w"), new int[] {2, 2}, new byte[3]));
        fails(new byte[] {0, 0}, "header");
        fails(new byte[] {0, 0, 0x0D, 1, 0, 0, 0, 1, 0}, "magic");
        fails(new byte[] {1, 0, 8, 1, 0, 0, 0, 1, 0}, "magic");
        fails(new byte[] {0, 0, 8, 2, 0, 0, 0, 1}, "dimensions");
        fails(idx(new int[] {-1}, new byte[0], 0), ">= 0");
        fails(idx(new int[] {65536, 65536}, new byte[0], 0), "at most");
        fails(idx(new int[] {4}, new byte[3], 0), "holds 3");
        fails(idx(new int[] {4}, new byte[4], 1), "trailing");
    }

    private void fails(byte[] content, String fragment) throws IOException {
        Path f = write(Files.createTempFile(dir, "bad", ""), content);
        IOException e = assertThrows(IOException.class, () -> Idx.read(f));
        assertTrue(e.getMessage().contains(fragment) && e.getMessage().contains(f.toString()), e.getMessage());
    }

    @Test
    void fashionMnistReadsASplitAndExplainsAMissingDataset() throws IOException {
        byte[] images = new byte[3 * 28 * 28];
        write(dir.resolve("t10k-images-idx3-ubyte.gz"), idx(new int[] {3, 28, 28}, images, 0));
        write(dir.resolve("t10k-labels-idx1-ubyte"), idx(new int[] {3}, new byte[] {0, 9, 4}, 0));
        FashionMnist.Split s = FashionMnist.read(dir, false);
        assertEquals(3, s.size());
        assertEquals(9, s.labels().get(1));
        IOException e = assertThrows(IOException.class, () -> FashionMnist.read(dir, true));
        assertTrue(
                e.getMessage().contains("train-images-idx3-ubyte")
                        && e.getMessage().contains("apt-get install " + "dataset-fashion-mnist"),
                e.getMessage());
        write(dir.resolve("t10k-labels-idx1-ubyte"), idx(new int[] {3}, new byte[] {0, 10, 4}, 0));
        e = assertThrows(IOException.class, () -> FashionMnist.read(dir, false));
        assertTrue(e.getMessage().contains("label 1") && e.getMessage().contains("0..9"), e.getMessage());
    }
}
