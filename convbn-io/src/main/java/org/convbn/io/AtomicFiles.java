package org.convbn.io;

import net.jcip.annotations.NotThreadSafe;
import net.jcip.annotations.ThreadSafe;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/** Writes a file so that it is either complete or absent: a temporary file beside it, then a rename. */
@ThreadSafe
public final class AtomicFiles {
    private AtomicFiles() {
    }

    /** Produces a file's content. */
    @FunctionalInterface
    @NotThreadSafe
    public interface Writer {
        void writeTo(OutputStream out) throws IOException;
    }

    /**
     * Checks before a long run that {@code target} can later be written: it is not a directory, and its directory
     * exists (or can be created) and is writable.
     *
     * @param target the file a command will write at its end (not modified)
     * @param option the option that named it, for the message
     * @throws IllegalArgumentException naming the option and the path otherwise
     */
    public static void checkWritable(Path target, String option) {
        Path abs = target.toAbsolutePath();
        if (Files.isDirectory(abs)) {
            throw new IllegalArgumentException(option + ": expected a file to write, got the directory " + abs);
        }
        Path dir = abs.getParent();
        try {
            if (dir != null) {
                Files.createDirectories(dir);
            }
        } catch (IOException e) {
            throw new IllegalArgumentException(option + ": cannot create the directory " + dir + " (" + e + ")", e);
        }
        if (dir != null && !Files.isWritable(dir)) {
            throw new IllegalArgumentException(option + ": the directory " + dir + " is not writable");
        }
    }

    /**
     * @param target the file to create or replace
     * @param writer writes the content
     * @throws IOException if writing or renaming fails; the target is then untouched and no temporary file stays
     */
    public static void write(Path target, Writer writer) throws IOException {
        Path abs = target.toAbsolutePath();
        Path dir = abs.getParent();
        if (dir != null) {
            Files.createDirectories(dir);
        }
        Path tmp = Files.createTempFile(dir, "." + abs.getFileName(), ".tmp");
        try {
            try (OutputStream out = Files.newOutputStream(tmp)) {
                writer.writeTo(out);
            }
            try {
                Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
