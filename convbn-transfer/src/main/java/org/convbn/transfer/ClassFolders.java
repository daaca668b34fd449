package org.convbn.transfer;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;
import net.jcip.annotations.ThreadSafe;
import org.convbn.io.AtomicFiles;
import org.convbn.train.data.FashionMnist;

/**
 * Writes labelled gray images (an IDX split such as Fashion-MNIST's) as a class-folder tree of PNG files, the
 * layout {@link ImageFolder} reads: {@code DIR/<class>/<index>.png}, the class folder named by its label as
 * {@code "<label>-<name>"} so that sorting the folders keeps the label order.
 */
@ThreadSafe
public final class ClassFolders {
    private ClassFolders() {}

    /**
     * @param split images {@code [n, h, w]} and labels, not modified
     * @param names class names by label (folder names are made file-safe)
     * @param into the root folder, created if absent
     * @param labels the labels to write (others are skipped)
     * @param perClass at most this many images per label, in file order
     * @return images written
     * @throws IllegalArgumentException if {@code perClass < 1} or {@code labels} is empty
     * @throws IOException if a file cannot be written
     */
    public static int write(FashionMnist.Split split, List<String> names, Path into, List<Integer> labels, int perClass)
            throws IOException {
        if (perClass < 1 || labels.isEmpty()) {
            throw new IllegalArgumentException(
                    "perClass, labels: expected >= 1 and some labels, got " + perClass + ", " + labels);
        }
        int h = split.images().shape()[1];
        int w = split.images().shape()[2];
        int[] count = new int[names.size()];
        int written = 0;
        for (int i = 0; i < split.size(); i++) {
            int label = split.labels().get(i);
            if (!labels.contains(label) || count[label] >= perClass) {
                continue;
            }
            BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_BYTE_GRAY);
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    int v = split.images().get((long) i * h * w + (long) y * w + x);
                    img.getRaster().setSample(x, y, 0, v);
                }
            }
            Path dir = into.resolve(folderName(label, names.get(label)));
            Files.createDirectories(dir);
            Path file = dir.resolve(String.format(Locale.ROOT, "%05d.png", i));
            AtomicFiles.write(file, out -> {
                if (!ImageIO.write(img, "png", out)) {
                    throw new IOException("no PNG writer available");
                }
            });
            count[label]++;
            written++;
        }
        return written;
    }

    /** @return {@code "<label>-<name>"} with characters other than letters, digits and '-' replaced by '_' */
    public static String folderName(int label, String name) {
        return label + "-" + name.replaceAll("[^A-Za-z0-9-]", "_");
    }
}
