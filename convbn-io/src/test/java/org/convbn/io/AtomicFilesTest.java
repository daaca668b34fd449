package org.convbn.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Output files: a special file or a directory is never replaced, a symbolic link is written through, places where
 * nothing can be created fail before any work, the umask applies, a failed write names the file and leaves the
 * target and no temporary file, and an interrupted write's temporaries are removed.
 */
class AtomicFilesTest {
    @TempDir
    Path dir;

    private static AtomicFiles.Writer text(String s) {
        return out -> out.write(s.getBytes(StandardCharsets.UTF_8));
    }

    private List<Path> temporaries() throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(p -> p.getFileName().toString().endsWith(".tmp"))
                    .toList();
        }
    }

    @Test
    void aFifoOrADirectoryIsRefusedByNameAndStaysWhatItWas() throws Exception {
        Path fifo = dir.resolve("out.safetensors");
        Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).start();
        assumeTrue(mkfifo.waitFor() == 0, "mkfifo is available");
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> AtomicFiles.checkWritable(fifo, "--out"));
        assertTrue(
                e.getMessage().startsWith("--out: expected a regular file to write, got a device, FIFO or socket"),
                e.getMessage());
        IOException w = assertThrows(IOException.class, () -> AtomicFiles.write(fifo, text("x")));
        assertTrue(w.getMessage().contains(fifo.toString()), w.getMessage());
        assertFalse(Files.isRegularFile(fifo, LinkOption.NOFOLLOW_LINKS), "still the FIFO");
        assertTrue(Files.exists(fifo, LinkOption.NOFOLLOW_LINKS));

        Path sub = Files.createDirectory(dir.resolve("sub"));
        e = assertThrows(IllegalArgumentException.class, () -> AtomicFiles.checkWritable(sub, "--curve"));
        assertTrue(
                e.getMessage().startsWith("--curve: expected a regular file to write, got a directory"),
                e.getMessage());
        assertEquals(List.of(), temporaries());
    }

    @Test
    void aSymbolicLinkIsWrittenThroughAndStaysALink() throws IOException {
        Path real = Files.createDirectory(dir.resolve("real")).resolve("weights.safetensors");
        Files.writeString(real, "old");
        Path link = Files.createSymbolicLink(dir.resolve("link.safetensors"), real);
        AtomicFiles.checkWritable(link, "--out");
        AtomicFiles.write(link, text("new"));
        assertTrue(Files.isSymbolicLink(link));
        assertEquals("new", Files.readString(real));
        // a link to a file that does not exist yet creates that file
        Path dangling = Files.createSymbolicLink(dir.resolve("later.json"), real.resolveSibling("later.json"));
        AtomicFiles.write(dangling, text("{}"));
        assertEquals("{}", Files.readString(real.resolveSibling("later.json")));
    }

    @Test
    void aPlaceWhereNoFileCanBeCreatedFailsAtTheCheck() {
        Path proc = Path.of("/proc/convbn-o.safetensors");
        assumeTrue(Files.isDirectory(Path.of("/proc/self")), "a Linux /proc");
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> AtomicFiles.checkWritable(proc, "--out"));
        assertTrue(e.getMessage().startsWith("--out: cannot create a file in /proc"), e.getMessage());
    }

    @Test
    void theWrittenFileHasTheUmasksPermissions() throws IOException {
        Path plain = Files.createFile(dir.resolve("plain")); // what the process's umask gives a new file
        Path written = dir.resolve("written");
        AtomicFiles.write(written, text("x"));
        assertEquals(Files.getPosixFilePermissions(plain), Files.getPosixFilePermissions(written));
    }

    @Test
    void aFailedWriteNamesTheFileAndLeavesTheTargetAndNoTemporary() throws IOException {
        Path target = dir.resolve("c.safetensors");
        Files.writeString(target, "previous");
        IOException e = assertThrows(
                IOException.class,
                () -> AtomicFiles.write(target, out -> {
                    out.write(1);
                    throw new IOException("No space left on device");
                }));
        assertEquals("writing " + target + ": No space left on device", e.getMessage());
        assertEquals("previous", Files.readString(target));
        assertEquals(List.of(), temporaries());
    }

    @Test
    void theTemporariesOfAnInterruptedWriteAreRemovedAndNothingElse() throws IOException {
        Path target = dir.resolve("checkpoint.safetensors");
        Files.writeString(dir.resolve(".checkpoint.safetensors.k3j9.tmp"), "partial");
        Files.writeString(dir.resolve(".checkpoint.safetensors.0a.tmp"), "partial");
        Files.writeString(dir.resolve(".other.safetensors.0a.tmp"), "another file's");
        Files.writeString(target, "whole");
        assertEquals(2, AtomicFiles.removeStaleTemporaries(target));
        assertEquals(List.of(dir.resolve(".other.safetensors.0a.tmp")), temporaries());
        assertEquals("whole", Files.readString(target));
    }
}
