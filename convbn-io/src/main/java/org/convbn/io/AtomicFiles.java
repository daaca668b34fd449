package org.convbn.io;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.ThreadLocalRandom;
import net.jcip.annotations.NotThreadSafe;
import net.jcip.annotations.ThreadSafe;

/**
 * Writes a file so that it is either complete or absent: a temporary file beside it ({@code .<name>.<random>.tmp}),
 * then a rename over the target.
 *
 * <ul>
 *   <li>A target that exists must be a regular file: a directory, device, FIFO or socket is refused by name (a
 *   rename would replace the node with a regular file).</li>
 *   <li>A symbolic link is written through: the file it points to (through every link of a chain) is replaced
 *   atomically, and the link stays.</li>
 *   <li>The temporary file is created with the process's default permissions (the umask applies), so the written
 *   file has them too.</li>
 *   <li>Every failure names the file; a failed write leaves the target as it was and no temporary file.</li>
 * </ul>
 */
@ThreadSafe
public final class AtomicFiles {
    /** Links followed at most before a chain is taken for a loop. */
    private static final int MAX_LINKS = 40;

    private static final String TMP_SUFFIX = ".tmp";

    private AtomicFiles() {}

    /** Produces a file's content. */
    @FunctionalInterface
    @NotThreadSafe
    public interface Writer {
        void writeTo(OutputStream out) throws IOException;
    }

    /**
     * Checks before a long run that {@code target} can later be written: the file it names (through symbolic links)
     * is absent or a regular file, its directory exists (or is created), and a file can be created and removed there
     * (what a writable bit does not show on /proc, /sys or a read-only mount).
     *
     * @param target the file a command will write at its end (not modified)
     * @param option the option that named it, for the message
     * @throws IllegalArgumentException naming the option and the path otherwise
     */
    public static void checkWritable(Path target, String option) {
        Path file;
        try {
            file = resolve(target);
        } catch (IOException e) {
            throw new IllegalArgumentException(
                    option + ": cannot follow the link " + target + " (" + e.getMessage() + ")", e);
        }
        String kind = nonRegularKind(file);
        if (kind != null) {
            throw new IllegalArgumentException(
                    option + ": expected a regular file to write, got " + kind + " at " + file);
        }
        Path dir = file.getParent();
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new IllegalArgumentException(option + ": cannot create the directory " + dir + " (" + e + ")", e);
        }
        try {
            Files.delete(createTemporary(file));
        } catch (IOException e) {
            throw new IllegalArgumentException(option + ": cannot create a file in " + dir + " (" + e + ")", e);
        }
    }

    /**
     * Removes the temporary files an interrupted write of {@code target} left behind ({@code .<name>.*.tmp} beside
     * the file it names): a process killed while writing cannot remove its own.
     *
     * @param target the file (not modified)
     * @return how many were removed
     * @throws IOException if the directory cannot be listed or a file removed (named)
     */
    public static int removeStaleTemporaries(Path target) throws IOException {
        Path file = resolve(target);
        Path dir = file.getParent();
        if (!Files.isDirectory(dir)) {
            return 0;
        }
        int removed = 0;
        String glob = "." + file.getFileName() + ".*" + TMP_SUFFIX;
        try (DirectoryStream<Path> stale = Files.newDirectoryStream(dir, glob)) {
            for (Path p : stale) {
                if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
                    Files.delete(p);
                    removed++;
                }
            }
        }
        return removed;
    }

    /**
     * @param target the file to create or replace (through symbolic links)
     * @param writer writes the content
     * @throws IOException naming the file if it is not a regular file, or if writing or renaming fails; the target is
     *                     then untouched and no temporary file stays
     */
    public static void write(Path target, Writer writer) throws IOException {
        Path file = resolve(target);
        String kind = nonRegularKind(file);
        if (kind != null) {
            throw new IOException(file + ": expected a regular file to write, got " + kind);
        }
        Files.createDirectories(file.getParent());
        Path tmp = createTemporary(file);
        try {
            try (OutputStream out = Files.newOutputStream(tmp)) {
                writer.writeTo(out);
            } catch (IOException e) {
                throw new IOException("writing " + file + ": " + e.getMessage(), e);
            }
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** @return the absolute path {@code target} names once every symbolic link is followed (the end may not exist) */
    static Path resolve(Path target) throws IOException {
        Path p = target.toAbsolutePath().normalize();
        for (int i = 0; i < MAX_LINKS && Files.isSymbolicLink(p); i++) {
            p = p.getParent().resolve(Files.readSymbolicLink(p)).normalize();
        }
        if (Files.isSymbolicLink(p)) {
            throw new IOException(target + ": more than " + MAX_LINKS + " symbolic links (a loop?)");
        }
        return p;
    }

    /** @return what {@code file} is when it exists and is not a regular file, e.g. "a directory"; else null */
    private static String nonRegularKind(Path file) {
        if (!Files.exists(file, LinkOption.NOFOLLOW_LINKS) || Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
            return null;
        }
        return Files.isDirectory(file, LinkOption.NOFOLLOW_LINKS)
                ? "a directory"
                : "a device, FIFO or socket (not a regular file)";
    }

    /** Creates {@code .<name>.<random>.tmp} beside {@code file} with the default permissions (the umask applies). */
    private static Path createTemporary(Path file) throws IOException {
        for (int attempt = 0; ; attempt++) {
            Path tmp = file.resolveSibling("." + file.getFileName() + "."
                    + Long.toUnsignedString(ThreadLocalRandom.current().nextLong(), 36) + TMP_SUFFIX);
            try {
                return Files.createFile(tmp);
            } catch (FileAlreadyExistsException e) {
                if (attempt == 10) {
                    throw e;
                }
            }
        }
    }
}
