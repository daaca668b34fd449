package org.convbn.transfer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.convbn.train.data.FashionMnist;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;

class ImageBatchesTest {
    /** float32 pixels through OpenCV resize at the same size and the normalisation: rounding only. */
    private static final double PIXEL_TOLERANCE = 1e-5;

    @Test
    void validationBatchesArePixelsNormalisedAsImageNetWithFolderLabels(@TempDir Path dir) throws Exception {
        TestImages.write(dir, List.of(0, 1, 2), 5);
        ImageFolder folder = ImageFolder.scan(dir, 0, 1);
        assertEquals(List.of("0-T-shirt_top", "1-Trouser", "2-Pullover"), folder.classes());
        assertEquals(15, folder.train().size());
        ImageBatches batches = ImageBatches.builder(folder.train(), folder.classes())
                .resolution(28)
                .batch(4)
                .training(false)
                .seed(1)
                .build();
        assertEquals(4, batches.batchesPerEpoch());
        FashionMnist.Split split = TestImages.subset();
        int seen = 0;
        while (batches.hasNext()) {
            DataSet d = batches.next();
            INDArray x = d.getFeatures();
            assertArrayEquals(new long[] {x.size(0), 3, 28, 28}, x.shape());
            for (int i = 0; i < x.size(0); i++) {
                ImageFolder.Example e = folder.train().get(seen + i);
                int index = Integer.parseInt(e.file().getFileName().toString().replace(".png", ""));
                assertEquals(split.labels().get(index), e.label());
                assertEquals(1.0, d.getLabels().getDouble(i, e.label()));
                for (int c = 0; c < 3; c++) {
                    for (int p : new int[] {0, 100, 405, 783}) {
                        double pixel = split.images().get((long) index * 784 + p);
                        double expected = (pixel / 255 - ImageNetNormalization.MEAN[c]) / ImageNetNormalization.STD[c];
                        assertEquals(expected, x.getDouble(i, c, p / 28, p % 28), PIXEL_TOLERANCE);
                    }
                }
            }
            seen += (int) x.size(0);
        }
        assertEquals(15, seen);
    }

    @Test
    void trainingEpochsAreShuffledAndAugmentedByTheirSeedAndRepeatExactly(@TempDir Path dir) throws Exception {
        TestImages.write(dir, List.of(0, 1), 6);
        ImageFolder folder = ImageFolder.scan(dir, 0, 1);
        ImageBatches.Builder same = ImageBatches.builder(folder.train(), folder.classes())
                .resolution(32)
                .batch(4)
                .seed(7)
                .dataType(DataType.DOUBLE);
        ImageBatches a = same.build();
        ImageBatches b = same.build();
        a.startEpoch(1);
        DataSet a1 = a.next();
        b.startEpoch(0);
        DataSet b0 = b.next();
        b.startEpoch(1);
        DataSet b1 = b.next();
        assertEquals(a1.getFeatures(), b1.getFeatures());
        assertEquals(a1.getLabels(), b1.getLabels());
        assertNotEquals(b0.getFeatures(), b1.getFeatures());
        assertEquals(3, a.batchesPerEpoch()); // 12 images, batch 4
        a.next();
        a.next();
        assertFalse(a.hasNext());
        assertTrue(a1.getFeatures().dataType() == DataType.DOUBLE);
    }
}
