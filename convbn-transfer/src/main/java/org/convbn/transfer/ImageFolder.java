package org.convbn.transfer;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import net.jcip.annotations.Immutable;

/**
 * A labelled image collection laid out as one subfolder per class ({@code DIR/cat/001.jpg}, {@code DIR/dog/a.png},
 * ...), the layout of torchvision's ImageFolder and DataVec's {@code ParentPathLabelGenerator}: the label of an
 * image is the name of the folder it is in, and classes are numbered in the sorted order of their folder names.
 *
 * <p>JPEG and PNG files (by extension, any case) are taken; other files are ignored. Each image is decoded in full
 * once when the folder is scanned: a file that is not a readable JPEG or PNG, or whose data is damaged (a file cut
 * short, bytes flipped: an error or a warning of the decoder), is skipped, counted and named in {@link #skipped()}
 * with the reason, so a run goes on with the rest, says how many it left out, and does not meet them mid-epoch.
 *
 * @param root the folder that was scanned
 * @param classes class names (folder names), sorted; label i is {@code classes.get(i)}
 * @param train the training examples, in scan order
 * @param validation the validation examples, in scan order (empty when no split was asked for)
 * @param skipped the files left out because they could not be decoded, each with the reason
 */
@Immutable
public record ImageFolder(
        Path root, List<String> classes, List<Example> train, List<Example> validation, List<String> skipped) {
    /** File extensions taken, lower case. */
    public static final List<String> EXTENSIONS = List.of("jpg", "jpeg", "png");

    /**
     * One image and its label.
     *
     * @param file the image file
     * @param label index into {@link ImageFolder#classes()}
     */
    @Immutable
    public record Example(Path file, int label) {}

    public ImageFolder {
        classes = List.copyOf(classes);
        train = List.copyOf(train);
        validation = List.copyOf(validation);
        skipped = List.copyOf(skipped);
    }

    /**
     * Scans {@code root} and splits each class at random into training and validation examples (stratified: every
     * class gives the same fraction, at least one validation image when {@code validationFraction > 0} and the
     * class has two or more).
     *
     * @param root a folder with one subfolder per class
     * @param validationFraction 0 (no validation split) to below 1
     * @param seed the seed of the split: the same seed, folder and fraction give the same split
     * @return the split
     * @throws IllegalArgumentException if {@code root} is not a folder, has fewer than two class folders, a class
     *                                  folder has no readable image, or the fraction is outside [0, 1)
     * @throws IOException if a folder cannot be listed
     */
    public static ImageFolder scan(Path root, double validationFraction, long seed) throws IOException {
        if (!(validationFraction >= 0 && validationFraction < 1)) {
            throw new IllegalArgumentException(
                    "validationFraction: expected a value in [0, 1), got " + validationFraction);
        }
        if (!Files.isDirectory(root)) {
            throw new IllegalArgumentException("data: expected a folder with one subfolder per class, got "
                    + (Files.exists(root) ? "a file " : "no such folder ") + root);
        }
        List<Path> classFolders;
        try (Stream<Path> s = Files.list(root)) {
            classFolders = s.filter(Files::isDirectory).sorted().toList();
        }
        if (classFolders.size() < 2) {
            throw new IllegalArgumentException("data: expected one subfolder per class (at least 2) under " + root
                    + ", got " + classFolders.size()
                    + (classFolders.isEmpty()
                            ? " (images must sit in class folders, " + "e.g. " + root.resolve("cat/001.jpg") + ")"
                            : ": " + classFolders.get(0).getFileName()));
        }
        List<String> classes = new ArrayList<>();
        List<Example> train = new ArrayList<>();
        List<Example> validation = new ArrayList<>();
        List<String> skipped = new ArrayList<>();
        Random rng = new Random(seed);
        for (Path folder : classFolders) {
            int label = classes.size();
            classes.add(folder.getFileName().toString());
            List<Path> files;
            try (Stream<Path> s = Files.list(folder)) {
                files = s.filter(Files::isRegularFile)
                        .filter(ImageFolder::hasImageExtension)
                        .sorted()
                        .toList();
            }
            List<Example> readable = new ArrayList<>();
            for (Path f : files) {
                String problem = decodeProblem(f);
                if (problem == null) {
                    readable.add(new Example(f, label));
                } else {
                    skipped.add(f + ": " + problem);
                }
            }
            if (readable.isEmpty()) {
                throw new IllegalArgumentException("data: class folder " + folder + " has no readable JPEG or PNG "
                        + "image (" + files.size() + " image files, none readable)");
            }
            Collections.shuffle(readable, rng);
            int v = validationFraction == 0 || readable.size() < 2
                    ? 0
                    : Math.max(1, (int) Math.round(validationFraction * readable.size()));
            validation.addAll(readable.subList(0, v));
            train.addAll(readable.subList(v, readable.size()));
        }
        return new ImageFolder(root, classes, train, validation, skipped);
    }

    private static boolean hasImageExtension(Path p) {
        String name = p.getFileName().toString();
        int dot = name.lastIndexOf('.');
        return dot >= 0 && EXTENSIONS.contains(name.substring(dot + 1).toLowerCase(Locale.ROOT));
    }

    /** @return null if the file decodes in full, without a warning, as an image of at least 1x1; else why not */
    private static String decodeProblem(Path file) {
        try (ImageInputStream in = ImageIO.createImageInputStream(file.toFile())) {
            if (in == null) {
                return "cannot be opened";
            }
            Iterator<ImageReader> readers = ImageIO.getImageReaders(in);
            if (!readers.hasNext()) {
                return "not a JPEG or PNG image";
            }
            ImageReader r = readers.next();
            List<String> warnings = new ArrayList<>();
            r.addIIOReadWarningListener((source, warning) -> warnings.add(warning));
            try {
                r.setInput(in, true, true);
                BufferedImage image = r.read(0);
                if (image.getWidth() < 1 || image.getHeight() < 1) {
                    return "empty image";
                }
                return warnings.isEmpty() ? null : "damaged (" + warnings.get(0) + ")";
            } finally {
                r.dispose();
            }
        } catch (IOException | RuntimeException e) {
            return "unreadable (" + e.getMessage() + ")";
        }
    }
}
