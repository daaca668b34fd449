package org.convbn.transfer;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.convbn.train.data.FashionMnist;

/** The Fashion-MNIST subset under test resources, written as PNG class folders. */
public final class TestImages {
    private TestImages() {}

    /** @return the 400-image subset (40 per class) */
    public static FashionMnist.Split subset() throws IOException {
        // Copied out of the class path (a directory in this module, a jar in others).
        Path dir = Files.createTempDirectory("fashion-mnist-subset");
        try {
            for (String name : new String[] {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"}) {
                try (InputStream in = TestImages.class.getResourceAsStream("/fashion-mnist-subset/" + name)) {
                    if (in == null) {
                        throw new IOException("test resource /fashion-mnist-subset/" + name + " not found");
                    }
                    Files.copy(in, dir.resolve(name));
                }
            }
            return FashionMnist.read(dir, true);
        } finally {
            for (String name : new String[] {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"}) {
                Files.deleteIfExists(dir.resolve(name));
            }
            Files.deleteIfExists(dir);
        }
    }

    /**
     * @param into root of the tree
     * @param labels classes to write
     * @param perClass images per class (at most 40)
     */
    public static Path write(Path into, List<Integer> labels, int perClass) throws IOException {
        ClassFolders.write(subset(), FashionMnist.CLASSES, into, labels, perClass);
        return into;
    }
}
