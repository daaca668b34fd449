package org.convbn.transfer;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.List;

import org.convbn.core.data.FashionMnist;

/** The Fashion-MNIST subset under test resources, written as PNG class folders. */
final class TestImages {
    private TestImages() {
    }

    /** @return the 400-image subset (40 per class) */
    static FashionMnist.Split subset() throws IOException {
        try {
            Path dir = Path.of(TestImages.class.getResource("/fashion-mnist-subset/train-labels-idx1-ubyte.gz").toURI())
                    .getParent();
            return FashionMnist.read(dir, true);
        } catch (URISyntaxException e) {
            throw new IOException(e);
        }
    }

    /**
     * @param into root of the tree
     * @param labels classes to write
     * @param perClass images per class (at most 40)
     */
    static Path write(Path into, List<Integer> labels, int perClass) throws IOException {
        ClassFolders.write(subset(), FashionMnist.CLASSES, into, labels, perClass);
        return into;
    }
}
