package org.convbn.train.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import net.jcip.annotations.NotThreadSafe;
import net.jcip.annotations.ThreadSafe;

/**
 * Locates and reads Fashion-MNIST (70,000 28x28 grayscale images of 10 clothing classes) from IDX files, by default
 * where Debian's package {@code dataset-fashion-mnist} installs them.
 */
@ThreadSafe
public final class FashionMnist {
    /** Where the Debian package puts the files (found with {@code dpkg -L dataset-fashion-mnist}). */
    public static final Path DEBIAN_DIRECTORY = Path.of("/usr/share/datasets/fashion-mnist");
    /** The classes, by label. */
    public static final List<String> CLASSES = List.of(
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot");

    private FashionMnist() {}

    /**
     * Images and labels of one split.
     *
     * @param images {@code [n, 28, 28]} unsigned bytes
     * @param labels {@code [n]}, 0..9
     */
    @NotThreadSafe
    public record Split(Idx.Array images, Idx.Array labels) {
        public Split {
            if (images.shape().length != 3 || labels.shape().length != 1 || images.shape()[0] != labels.shape()[0]) {
                throw new IllegalArgumentException("images, labels: expected [n, h, w] and [n], got "
                        + Arrays.toString(images.shape()) + " and " + Arrays.toString(labels.shape()));
            }
        }

        /** @return the number of examples */
        public int size() {
            return labels.shape()[0];
        }
    }

    /**
     * Reads a split from {@code directory}: {@code train-images-idx3-ubyte} and {@code train-labels-idx1-ubyte} (or
     * {@code t10k-...} for the test split), each plain or with ".gz".
     *
     * @param directory where the files are
     * @param train the training split (60,000) or the test split (10,000)
     * @throws IOException if a file is missing (with the install hint) or corrupt (named)
     */
    public static Split read(Path directory, boolean train) throws IOException {
        String prefix = train ? "train" : "t10k";
        Split s = new Split(
                Idx.read(find(directory, prefix + "-images-idx3-ubyte")),
                Idx.read(find(directory, prefix + "-labels-idx1-ubyte")));
        for (long i = 0; i < s.size(); i++) {
            if (s.labels().get(i) >= CLASSES.size()) {
                throw new IOException(directory + ": label " + i + ": expected 0..9, got "
                        + s.labels().get(i));
            }
        }
        return s;
    }

    private static Path find(Path directory, String name) throws IOException {
        for (String candidate : new String[] {name, name + ".gz"}) {
            Path p = directory.resolve(candidate);
            if (Files.isRegularFile(p)) {
                return p;
            }
        }
        throw new IOException("Fashion-MNIST: expected " + name + " or " + name + ".gz in " + directory
                + ", found neither. Install Debian's package (sudo apt-get install dataset-fashion-mnist) or pass the "
                + "directory holding the IDX files.");
    }
}
