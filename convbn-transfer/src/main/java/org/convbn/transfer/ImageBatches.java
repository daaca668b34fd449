package org.convbn.transfer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

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
import org.nd4j.linalg.dataset.api.DataSetPreProcessor;
import org.nd4j.linalg.dataset.api.iterator.DataSetIterator;
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
public final class ImageBatches implements DataSetIterator, EpochAware {
    private static final long serialVersionUID = 1L;
    /** The random crop is taken from the image resized to this multiple of the resolution (torchvision: 256/224). */
    public static final double CROP_MARGIN = 8.0 / 7.0;

    private final List<Example> examples;
    private final List<String> classes;
    private final int resolution;
    private final int batch;
    private final boolean train;
    private final long seed;
    private final DataType dataType;
    private final ParentPathLabelGenerator labelGenerator = new ParentPathLabelGenerator();
    private transient NativeImageLoader loader;
    private int[] order;
    private int cursor;
    private DataSetPreProcessor preProcessor = new ImageNetNormalization();

    /**
     * @param examples the images, not modified
     * @param classes the class names, in label order (the parent folder names)
     * @param resolution height and width of the batches, at least 8
     * @param batch images per batch, at least 1 (and at most the number of images when training)
     * @param train whether to augment and shuffle (per epoch) and drop the last partial batch
     * @param seed seed of the shuffle and the augmentation
     * @param dataType FLOAT or DOUBLE
     */
    public ImageBatches(List<Example> examples, List<String> classes, int resolution, int batch, boolean train,
                        long seed, DataType dataType) {
        if (resolution < 8) {
            throw new IllegalArgumentException("resolution: expected >= 8, got " + resolution);
        }
        if (batch < 1 || (train && batch > examples.size())) {
            throw new IllegalArgumentException("batch: expected 1.." + examples.size() + " (the images), got " + batch);
        }
        if (dataType != DataType.FLOAT && dataType != DataType.DOUBLE) {
            throw new IllegalArgumentException("dataType: expected FLOAT or DOUBLE, got " + dataType);
        }
        this.examples = List.copyOf(examples);
        this.classes = List.copyOf(classes);
        this.resolution = resolution;
        this.batch = batch;
        this.train = train;
        this.seed = seed;
        this.dataType = dataType;
        startEpoch(0);
    }

    @Override
    public void startEpoch(int epoch) {
        order = new int[examples.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        long epochSeed = seed * 1_000_003L + epoch;
        if (train) {
            Random rng = new Random(epochSeed);
            for (int i = order.length - 1; i > 0; i--) {
                int j = rng.nextInt(i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        }
        loader = new NativeImageLoader(resolution, resolution, 3, transform(epochSeed));
        cursor = 0;
    }

    private ImageTransform transform(long epochSeed) {
        List<Pair<ImageTransform, Double>> steps = new ArrayList<>();
        if (train) {
            int margin = (int) Math.round(resolution * CROP_MARGIN);
            steps.add(new Pair<>(new ResizeImageTransform(margin, margin), 1.0));
            steps.add(new Pair<>(new RandomCropTransform(epochSeed, resolution, resolution), 1.0));
            steps.add(new Pair<>(new FlipImageTransform(1), 0.5));
        } else {
            steps.add(new Pair<>(new ResizeImageTransform(resolution, resolution), 1.0));
        }
        return new PipelineImageTransform(epochSeed, steps, false);
    }

    /** @return the number of images */
    public int size() {
        return examples.size();
    }

    /** @return batches per epoch */
    public int batchesPerEpoch() {
        return train ? examples.size() / batch : (examples.size() + batch - 1) / batch;
    }

    @Override
    public boolean hasNext() {
        int left = examples.size() - cursor;
        return train ? left >= batch : left > 0;
    }

    @Override
    public DataSet next() {
        return next(batch);
    }

    @Override
    public DataSet next(int num) {
        if (!hasNext()) {
            throw new java.util.NoSuchElementException("no batch left in this epoch (" + examples.size()
                    + " images, batch " + batch + ")");
        }
        int n = Math.min(num, examples.size() - cursor);
        INDArray features = Nd4j.create(dataType, n, 3, resolution, resolution);
        INDArray labels = Nd4j.zeros(dataType, n, classes.size());
        for (int i = 0; i < n; i++) {
            Example e = examples.get(order[cursor + i]);
            features.putSlice(i, decode(e));
            labels.putScalar(i, label(e), 1.0);
        }
        cursor += n;
        DataSet d = new DataSet(features, labels);
        if (preProcessor != null) {
            preProcessor.preProcess(d);
        }
        return d;
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
            throw new UncheckedIOException(new IOException("image " + e.file() + ": cannot be decoded ("
                    + ex.getMessage() + ")", ex));
        }
    }

    private int label(Example e) {
        Writable w = labelGenerator.getLabelForPath(e.file().toUri());
        int label = classes.indexOf(w.toString());
        if (label != e.label()) {
            throw new IllegalStateException("image " + e.file() + ": its folder names class " + w + ", expected "
                    + classes.get(e.label()));
        }
        return label;
    }

    @Override
    public int inputColumns() {
        return 3 * resolution * resolution;
    }

    @Override
    public int totalOutcomes() {
        return classes.size();
    }

    @Override
    public boolean resetSupported() {
        return true;
    }

    @Override
    public boolean asyncSupported() {
        return true;
    }

    /** Rewinds to the start of epoch 0's order (use {@link #startEpoch} for another epoch). */
    @Override
    public void reset() {
        startEpoch(0);
    }

    @Override
    public int batch() {
        return batch;
    }

    @Override
    public void setPreProcessor(DataSetPreProcessor preProcessor) {
        this.preProcessor = preProcessor;
    }

    @Override
    public DataSetPreProcessor getPreProcessor() {
        return preProcessor;
    }

    @Override
    public List<String> getLabels() {
        return classes;
    }
}
