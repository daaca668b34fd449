package com.example.finetune;

import java.nio.file.Files;
import java.nio.file.Path;
import org.convbn.core.Mode;
import org.convbn.net.Network;
import org.convbn.net.Zoo;
import org.convbn.transfer.FineTuning;
import org.convbn.transfer.ImageBatches;
import org.convbn.transfer.ImageFolder;
import org.convbn.transfer.Pretrained;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Fine-tunes a network of convbn's zoo on a folder with one subfolder of images per class, in TUNE mode (BatchNorm
 * folded into each convolution on every step: frozen-statistics gradients at the folded network's cost), with a
 * checkpoint after every epoch that a second run resumes from, and writes the tuned weights in torchvision's names.
 *
 * <pre>
 * mvn -q compile exec:java -Dexec.args="sample-data"
 * mvn -q compile exec:java -Dexec.args="my-images resnet18.safetensors resnet18"
 * </pre>
 *
 * Without weights the network starts from PyTorch's initialisation (the sample data is small enough for that); with
 * torchvision weights exported as safetensors ({@code docs/transfer-learning.md} of convbn shows how) it starts
 * pretrained and gets a new head for the folder's classes.
 */
public final class FineTuneExample {
    /** Small images and batches keep the sample run to seconds; use 224 and 32 for real data. */
    private static final int RESOLUTION = 32;

    private static final int BATCH = 4;
    private static final int EPOCHS = 2;
    private static final long SEED = 1;

    private FineTuneExample() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 1 && args.length != 3) {
            System.err.println("usage: DATA_DIR [WEIGHTS.safetensors MODEL]   (models: " + Zoo.names() + ")");
            System.exit(2);
        }
        Path data = Path.of(args[0]);
        ImageFolder folder = ImageFolder.scan(data, 0.25, SEED); // a seeded, stratified 75/25 split
        System.out.printf(
                "%s: classes %s, %d training and %d validation images, %d unreadable skipped%n",
                data,
                folder.classes(),
                folder.train().size(),
                folder.validation().size(),
                folder.skipped().size());

        ImageBatches train = ImageBatches.builder(folder.train(), folder.classes())
                .resolution(RESOLUTION)
                .batch(BATCH)
                .seed(SEED)
                .build(); // shuffled, random crops and flips, ImageNet normalisation
        ImageBatches validation = ImageBatches.builder(folder.validation(), folder.classes())
                .resolution(RESOLUTION)
                .batch(BATCH)
                .training(false)
                .build();

        Network net;
        if (args.length == 3) {
            net = Pretrained.load(args[2], Path.of(args[1]), DataType.FLOAT, Mode.EVAL);
            net.replaceHead(folder.classes().size(), SEED);
        } else {
            net = Zoo.create("resnet18", folder.classes().size(), DataType.FLOAT, SEED);
        }
        FineTuning.Config config = FineTuning.Config.builder()
                .mode(Mode.TUNE)
                .frozenParts(args.length == 3 ? 2 : 0) // pretrained: keep the stem and the first stage as they are
                .learningRate(0.01)
                .epochs(EPOCHS)
                .data("class_names", folder.classes()) // a resume with other classes is refused
                .data("seed", SEED)
                .build();

        Path checkpoint = Path.of("target", "checkpoint.safetensors");
        boolean resume = Files.isRegularFile(checkpoint);
        try (FineTuning job = resume ? FineTuning.resume(net, config, checkpoint) : FineTuning.start(net, config)) {
            if (resume) {
                System.out.println("resumed from " + checkpoint + " after epoch " + job.epochsDone());
            }
            while (job.epochsDone() < config.epochs()) {
                FineTuning.Epoch epoch = job.runEpoch(train, validation, (batch, images, loss) -> {});
                System.out.println(FineTuning.describe(epoch));
                job.checkpoint(checkpoint); // written atomically: a crash keeps the previous one
            }
            Path out = Path.of("target", "tuned.safetensors");
            job.exportWeights(out); // torchvision names: load_state_dict(strict=True) in PyTorch
            System.out.println("wrote " + out);
        }
    }
}
