package org.convbn.transfer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.transfer.ImageFolder.Example;
import org.datavec.api.io.labels.ParentPathLabelGenerator;
import org.datavec.api.writable.Writable;
import org.datavec.image.data.ImageWritable;
import org.datavec.image.loader.NativeImageLoader;
import org.datavec.image.transform.FlipImageTransform;
import org.datavec.image.transform.ImageTransform;
import org.datavec.image.transform.PipelineImageTransform;
import org.datavec.image.transform.RandomCropTransform;
import org.datavec.image.transform.ResizeImageTransform;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Mini-batches of images through DataVec: each file decoded by {@link NativeImageLoader} (OpenCV: JPEG, PNG; gray
 * images become 3 channels), resized, augmented for training with DataVec's {@link ImageTransform}s (a random crop
 * of {@code resolution} from the image resized to {@code 8/7} of it, then a horizontal flip with probability 1/2:
 * a fixed-scale RandomResizedCrop and torchvision's RandomHorizontalFlip), turned from OpenCV's BGR into RGB and
 * normalised as ImageNet ({@link ImageNetNormalization}). Labels come from the parent folder's name
 * ({@link ParentPathLabelGenerator}) mapped to the class list, so a split missing a class keeps the numbering.
 *
 * <p>Features {@code [N, 3, R, R]} NCHW of the chosen data type, labels one-hot {@code [N, classes]}. The order of
 * a training epoch is a shuffle seeded by {@code seed} and the epoch, and so is its augmentation: the same epoch
 * gives the same batches, which is what lets a run resume bit for bit ({@link EpochAware}). A validation source
 * (no augmentation) keeps the scan order. The last partial batch of a training epoch is dropped; validation keeps
 * it.
 *
 * <p>DataVec's ImageRecordReader is not used because it numbers labels from the files it is given (a validation
 * split lacking a class would shift them) and fixes its order at initialisation.
 */
@NotThreadSafe
public final class ImageBatches extends EpochBatches {
    private static final long serialVersionUID = 1L;
    /** The random crop is taken from the image resized to this multiple of the resolution (torchvision: 256/224). */
    public static final double CROP_MARGIN = 8.0 / 7.0;

    private final List<Example> examples;
    private final List<String> classes;
    private final int resolution;
    private final DataType dataType;
    private final ParentPathLabelGenerator labelGenerator = new ParentPathLabelGenerator();
    /** The loader of the current epoch (its transforms are seeded by the epoch), made on the epoch's first batch. */
    private transient NativeImageLoader loader;
    /** The {@link #epochStart()} the loader was made for. */
    private long loaderStart = -1;

    /**
     * @param examples the images, not modified
     * @param classes the class names, in label order (the parent folder names)
     * @return a builder of batches of these images: 224x224, 32 per batch, training (augmented, shuffled), seed 0,
     *         FLOAT unless set otherwise
     */
    public static Builder builder(List<Example> examples, List<String> classes) {
        return new Builder(examples, classes);
    }

    /** The settings of an {@link ImageBatches}, checked in {@link #build()}. */
    @NotThreadSafe
    public static final class Builder {
        private final List<Example> examples;
        private final List<String> classes;
        private int resolution = 224;
        private int batch = 32;
        private boolean training = true;
        private long seed;
        private DataType dataType = DataType.FLOAT;

        private Builder(List<Example> examples, List<String> classes) {
            this.examples = Objects.requireNonNull(examples, "examples");
            this.classes = Objects.requireNonNull(classes, "classes");
        }

        /** @param resolution height and width of the batches, at least 8 */
        public Builder resolution(int resolution) {
            this.resolution = resolution;
            return this;
        }

        /** @param batch images per batch, at least 1 (and at most the number of images when training) */
        public Builder batch(int batch) {
            this.batch = batch;
            return this;
        }

        /**
         * @param training whether to augment and shuffle (per epoch) and drop the last partial batch (true), or keep
         *                 the scan order without augmentation (validation)
         */
        public Builder training(boolean training) {
            this.training = training;
            return this;
        }

        /** @param seed seed of the shuffle and the augmentation */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** @param dataType FLOAT or DOUBLE */
        public Builder dataType(DataType dataType) {
            this.dataType = dataType;
            return this;
        }

        /**
         * @return the batches
         * @throws IllegalArgumentException naming a resolution, batch size or data type out of range
         */
        public ImageBatches build() {
            return new ImageBatches(examples, classes, resolution, batch, training, seed, dataType);
        }
    }

    private ImageBatches(
            List<Example> examples,
            List<String> classes,
            int resolution,
            int batch,
            boolean train,
            long seed,
            DataType dataType) {
        super(examples.size(), classes, batch, train, seed);
        if (resolution < 8) {
            throw new IllegalArgumentException("resolution: expected >= 8, got " + resolution);
        }
        if (dataType != DataType.FLOAT && dataType != DataType.DOUBLE) {
            throw new IllegalArgumentException("dataType: expected FLOAT or DOUBLE, got " + dataType);
        }
        this.examples = List.copyOf(examples);
        this.classes = List.copyOf(classes);
        this.resolution = resolution;
        this.dataType = dataType;
        setPreProcessor(new ImageNetNormalization());
    }

    private ImageTransform transform(long epochSeed) {
        List<Pair<ImageTransform, Double>> steps = new ArrayList<>();
        if (training()) {
            int margin = (int) Math.round(resolution * CROP_MARGIN);
            steps.add(new Pair<>(new ResizeImageTransform(margin, margin), 1.0));
            steps.add(new Pair<>(new RandomCropTransform(epochSeed, resolution, resolution), 1.0));
            steps.add(new Pair<>(new FlipImageTransform(1), 0.5));
        } else {
            steps.add(new Pair<>(new ResizeImageTransform(resolution, resolution), 1.0));
        }
        return new PipelineImageTransform(epochSeed, steps, false);
    }

    @Override
    protected DataSet load(int[] batch) {
        if (loader == null || loaderStart != epochStart()) {
            loaderStart = epochStart();
            loader = new NativeImageLoader(resolution, resolution, 3, transform(epochSeed()));
        }
        INDArray features = Nd4j.create(dataType, batch.length, 3, resolution, resolution);
        int[] labels = new int[batch.length];
        for (int i = 0; i < batch.length; i++) {
            Example e = examples.get(batch[i]);
            features.putSlice(i, decode(e));
            labels[i] = label(e);
        }
        return new DataSet(features, oneHot(labels, dataType));
    }

    private INDArray decode(Example e) {
        try {
            ImageWritable image = loader.asWritable(e.file().toFile());
            if (image == null) {
                throw new IOException("no image decoded");
            }
            INDArray m = loader.asMatrix(image); // [1, 3, R, R], float, 0..255, OpenCV's BGR
            INDArray rgb = Nd4j.create(dataType, 3, resolution, resolution);
            for (int c = 0; c < 3; c++) {
                rgb.putSlice(c, m.slice(0).slice(2 - c).castTo(dataType));
            }
            return rgb;
        } catch (IOException | RuntimeException ex) {
            throw new UncheckedIOException(
                    new IOException("image " + e.file() + ": cannot be decoded (" + ex.getMessage() + ")", ex));
        }
    }

    private int label(Example e) {
        Writable w = labelGenerator.getLabelForPath(e.file().toUri());
        int label = classes.indexOf(w.toString());
        if (label != e.label()) {
            throw new IllegalStateException(
                    "image " + e.file() + ": its folder names class " + w + ", expected " + classes.get(e.label()));
        }
        return label;
    }

    @Override
    public int inputColumns() {
        return 3 * resolution * resolution;
    }

    /** DL4J may prefetch batches in another thread; each batch is independent of the next. */
    @Override
    public boolean asyncSupported() {
        return true;
    }
}
