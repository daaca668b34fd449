package org.convbn.testkit.conformance;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.net.URISyntaxException;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import net.jcip.annotations.Immutable;
import net.jcip.annotations.NotThreadSafe;
import net.jcip.annotations.ThreadSafe;

/**
 * Finds the public types of a module that do not state their thread safety. Every public type, nested ones included,
 * carries exactly one of {@link ThreadSafe} (any thread, concurrently), {@link NotThreadSafe} (one thread at a time:
 * confined to a thread, or handed between threads with a happens-before edge) or {@link Immutable}. An enum whose
 * instance fields are all final needs none: the language makes it immutable.
 */
@ThreadSafe
public final class ThreadSafetyDeclarations {
    private ThreadSafetyDeclarations() {}

    /**
     * @param anyClassOfModule a class loaded from the module's class directory or jar; not modified
     * @return the binary names of the module's public types that state nothing or more than one thing, sorted
     */
    public static List<String> undeclared(Class<?> anyClassOfModule) {
        Path root;
        try {
            root = Path.of(anyClassOfModule
                    .getProtectionDomain()
                    .getCodeSource()
                    .getLocation()
                    .toURI());
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException(
                    "anyClassOfModule: expected a class loaded from a file, got " + anyClassOfModule.getName(), e);
        }
        List<String> out = new ArrayList<>();
        ClassLoader loader = anyClassOfModule.getClassLoader();
        try (FileSystem jar = Files.isDirectory(root) ? null : FileSystems.newFileSystem(root)) {
            Path top = jar == null ? root : jar.getPath("/");
            try (Stream<Path> files = Files.walk(top)) {
                for (Path f : (Iterable<Path>)
                        files.filter(p -> p.toString().endsWith(".class")).sorted()::iterator) {
                    String name = top.relativize(f)
                            .toString()
                            .replace(f.getFileSystem().getSeparator(), ".");
                    name = name.substring(0, name.length() - ".class".length());
                    if (name.endsWith("package-info") || name.endsWith("module-info")) {
                        continue;
                    }
                    Class<?> c = Class.forName(name, false, loader);
                    if (isPublicApi(c) && !declared(c)) {
                        out.add(c.getName());
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (ClassNotFoundException e) {
            throw new IllegalStateException("a class file of " + root + " does not load: " + e.getMessage(), e);
        }
        return out;
    }

    private static boolean isPublicApi(Class<?> c) {
        if (c.isAnonymousClass() || c.isLocalClass() || c.isSynthetic()) {
            return false;
        }
        for (Class<?> k = c; k != null; k = k.getDeclaringClass()) {
            if (!Modifier.isPublic(k.getModifiers())) {
                return false;
            }
        }
        return true;
    }

    private static boolean declared(Class<?> c) {
        int n = (c.isAnnotationPresent(ThreadSafe.class) ? 1 : 0)
                + (c.isAnnotationPresent(NotThreadSafe.class) ? 1 : 0)
                + (c.isAnnotationPresent(Immutable.class) ? 1 : 0);
        if (n == 0 && c.isEnum()) {
            for (Field f : c.getDeclaredFields()) {
                if (!Modifier.isStatic(f.getModifiers()) && !Modifier.isFinal(f.getModifiers())) {
                    return false;
                }
            }
            return true;
        }
        return n == 1;
    }
}
