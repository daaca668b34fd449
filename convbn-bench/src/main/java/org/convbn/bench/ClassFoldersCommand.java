package org.convbn.bench;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import org.convbn.train.data.FashionMnist;
import org.convbn.transfer.ClassFolders;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Writes Fashion-MNIST (IDX files) as PNG class folders: data for {@code finetune} and for trying it out. */
@Command(
        name = "class-folders",
        description = "Write Fashion-MNIST's IDX files as a PNG class-folder tree.",
        mixinStandardHelpOptions = true)
final class ClassFoldersCommand implements Callable<Integer> {
    @Option(
            names = "--data",
            description = "directory of the IDX files (default: ${DEFAULT-VALUE}, Debian's " + "dataset-fashion-mnist)")
    Path data = FashionMnist.DEBIAN_DIRECTORY;

    @Option(names = "--test-split", description = "take the 10,000-image test split instead of the training split")
    boolean testSplit;

    @Option(names = "--classes", split = ",", description = "labels to write (default: all ten)")
    List<Integer> classes = List.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9);

    @Option(names = "--per-class", description = "images per class at most (default: ${DEFAULT-VALUE})")
    int perClass = 1000;

    @Option(names = "--out", required = true, description = "the root folder to write")
    Path out;

    @Override
    public Integer call() throws Exception {
        for (int c : classes) {
            if (c < 0 || c >= FashionMnist.CLASSES.size()) {
                throw new IllegalArgumentException("--classes: expected labels 0..9, got " + c);
            }
        }
        int n = ClassFolders.write(FashionMnist.read(data, !testSplit), FashionMnist.CLASSES, out, classes, perClass);
        System.out.println("wrote " + n + " PNG images under " + out);
        return 0;
    }
}
