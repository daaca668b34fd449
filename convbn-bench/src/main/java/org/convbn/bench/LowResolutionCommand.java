package org.convbn.bench;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

import org.convbn.core.Mode;
import org.convbn.train.data.FashionMnist;
import org.convbn.io.AtomicFiles;
import org.convbn.net.StateDict;
import org.convbn.net.ResNet;
import org.convbn.train.InMemoryDataset;
import org.convbn.nd4j.Optimizer;
import org.convbn.train.Trainer;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.learning.config.Nesterovs;
import org.nd4j.linalg.learning.regularization.L2Regularization;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Reduced-resolution training, then fine-tuning at the target resolution in EVAL, TUNE and DEPLOY: a ResNet-18
 * trains from scratch (TRAIN) on Fashion-MNIST downsampled to 14x14, then each mode fine-tunes a copy at 28x28 with
 * the same learning rate. EVAL and TUNE compute the same gradients; DEPLOY trains the folded weights, whose
 * per-channel learning rate is scaled by 1/s^2. Writes the learning curves as JSON and a PNG chart.
 */
@Command(name = "low-resolution", description = "Train at low resolution, then fine-tune at full resolution in EVAL, TUNE "
        + "and DEPLOY (Fashion-MNIST); writes curves and a chart.", mixinStandardHelpOptions = true)
final class LowResolutionCommand implements Callable<Integer> {
    @Option(names = "--data", description = "directory of the Fashion-MNIST IDX files (default: ${DEFAULT-VALUE}, "
            + "Debian's dataset-fashion-mnist)")
    Path data = FashionMnist.DEBIAN_DIRECTORY;
    @Option(names = "--train-size", description = "training examples used (default: ${DEFAULT-VALUE})")
    int trainSize = 12_000;
    @Option(names = "--test-size", description = "test examples used (default: ${DEFAULT-VALUE})")
    int testSize = 2_000;
    @Option(names = "--low-resolution-factor", description = "pretraining downsamples by this factor "
            + "(default: ${DEFAULT-VALUE}: 14x14)")
    int factor = 2;
    @Option(names = "--pretrain-epochs", description = "epochs at low resolution (default: ${DEFAULT-VALUE})")
    int pretrainEpochs = 2;
    @Option(names = "--finetune-epochs", description = "epochs at full resolution per mode (default: ${DEFAULT-VALUE})")
    int finetuneEpochs = 1;
    @Option(names = "--batch", description = "batch size (default: ${DEFAULT-VALUE})")
    int batch = 64;
    @Option(names = "--pretrain-lr", description = "learning rate of pretraining (default: ${DEFAULT-VALUE})")
    double pretrainLearningRate = 0.02;
    @Option(names = "--lr", description = "learning rate of every fine-tuning, the same for all modes "
            + "(default: ${DEFAULT-VALUE})")
    double learningRate = 0.01;
    @Option(names = "--eval-every", description = "steps between test evaluations (default: ${DEFAULT-VALUE})")
    int evalEvery = 25;
    @Option(names = "--modes", split = ",", description = "fine-tuning modes (default: EVAL,TUNE,DEPLOY)")
    List<Mode> modes = List.of(Mode.EVAL, Mode.TUNE, Mode.DEPLOY);
    @Option(names = "--out", description = "curves JSON (default: ${DEFAULT-VALUE})")
    Path out = Path.of("finetune.json");
    @Option(names = "--chart", description = "PNG of the curves (default: ${DEFAULT-VALUE})")
    Path chart = Path.of("finetune.png");

    /** What the command writes. */
    record Result(String dataset, int trainSize, int testSize, int lowResolution, int resolution,
                  double pretrainLearningRate, double learningRate,
                  List<Trainer.Point> pretraining, double pretrainedAccuracyLow, double pretrainedAccuracyFull,
                  Map<String, List<Trainer.Point>> finetuning, Map<String, Double> finetuneSeconds) {
    }

    @Override
    public Integer call() throws Exception {
        if (trainSize < batch || testSize < 1) {
            throw new IllegalArgumentException("--train-size, --test-size: expected >= --batch and >= 1, got "
                    + trainSize + ", " + testSize);
        }
        AtomicFiles.checkWritable(out, "--out");
        AtomicFiles.checkWritable(chart, "--chart");
        Nd4j.getMemoryManager().togglePeriodicGc(false);
        InMemoryDataset train = InMemoryDataset.of(FashionMnist.read(data, true), trainSize, 3, DataType.FLOAT);
        InMemoryDataset test = InMemoryDataset.of(FashionMnist.read(data, false), testSize, 3, DataType.FLOAT);
        InMemoryDataset trainLow = train.downsample(factor);
        InMemoryDataset testLow = test.downsample(factor);
        int full = (int) train.images().size(2);
        int low = full / factor;
        System.out.printf(Locale.ROOT, "Fashion-MNIST: %d train, %d test; ResNet-18, batch %d; pretraining at %dx%d "
                + "(lr %.3g), fine-tuning at %dx%d (lr %.3g)%n", train.size(), test.size(), batch, low, low,
                pretrainLearningRate, full, full, learningRate);

        ResNet net = ResNet.builder(ResNet.Depth.RESNET18).classes(FashionMnist.CLASSES.size())
                .dataType(DataType.FLOAT).seed(1).mode(Mode.TRAIN).build();
        List<Trainer.Point> pre = Trainer.fit(net, trainLow, testLow, sgd(pretrainLearningRate), pretrainEpochs, batch,
                evalEvery, 1,
                p -> print("pretrain " + low + "x" + low, p));
        double accLow = Trainer.accuracy(net, testLow, batch);
        double accFull = Trainer.accuracy(net, test, batch);
        System.out.printf(Locale.ROOT, "pretrained: test accuracy %.4f at %dx%d, %.4f at %dx%d%n", accLow, low, low,
                accFull, full, full);
        Map<String, INDArray> pretrained = new HashMap<>();
        StateDict.of(net).forEach((k, v) -> pretrained.put(k, v.dup()));

        Map<String, List<Trainer.Point>> curves = new LinkedHashMap<>();
        Map<String, Double> seconds = new LinkedHashMap<>();
        for (Mode mode : modes) {
            ResNet copy = ResNet.builder(ResNet.Depth.RESNET18).classes(FashionMnist.CLASSES.size())
                    .dataType(DataType.FLOAT).seed(1).mode(Mode.TRAIN).build();
            StateDict.load(copy, pretrained);
            copy.setMode(mode);
            long t0 = System.nanoTime();
            List<Trainer.Point> curve = new ArrayList<>();
            try {
                Trainer.fit(copy, train, test, sgd(learningRate), finetuneEpochs, batch, evalEvery, 2, p -> {
                    curve.add(p);
                    print("fine-tune " + mode, p);
                });
            } catch (IllegalArgumentException e) {
                // The TUNE fold refuses NaN parameters by name: the run diverged. Keep the curve up to there.
                System.out.println("  fine-tune " + mode + " diverged: " + e.getMessage());
                int step = curve.isEmpty() ? 0 : curve.get(curve.size() - 1).step();
                curve.add(new Trainer.Point(step + 1, Double.NaN, Double.NaN, Double.NaN));
            }
            curves.put(mode.name(), curve);
            seconds.put(mode.name(), (System.nanoTime() - t0) / 1e9);
        }
        Result r = new Result("Fashion-MNIST", train.size(), test.size(), low, full, pretrainLearningRate, learningRate,
                pre, accLow, accFull,
                curves, seconds);
        Json.writeAtomically(out, r);
        writeChart(r);
        System.out.println("final test accuracy after fine-tuning:");
        curves.forEach((m, c) -> System.out.printf(Locale.ROOT, "  %-6s %.4f (%.0f s)%n", m,
                c.get(c.size() - 1).testAccuracy(), seconds.get(m)));
        System.out.println("wrote " + out + " and " + chart);
        return 0;
    }

    /** SGD with Nesterov momentum 0.9 and coupled weight decay 1e-4 (PyTorch's SGD(nesterov=True, weight_decay)). */
    private static Optimizer sgd(double lr) {
        return new Optimizer(new Nesterovs(lr, 0.9), new L2Regularization(1e-4));
    }

    private static void print(String phase, Trainer.Point p) {
        System.out.printf(Locale.ROOT, "  %-18s step %5d (epoch %.2f): train loss %.4f, test accuracy %.4f%n", phase,
                p.step(), p.epoch(), p.trainLoss(), p.testAccuracy());
    }

    private void writeChart(Result r) throws java.io.IOException {
        XYChart c = new XYChartBuilder().width(900).height(500)
                .title(String.format(Locale.ROOT, "Fine-tuning at %dx%d after training at %dx%d (lr %.3g)",
                        r.resolution(), r.resolution(), r.lowResolution(), r.lowResolution(), r.learningRate()))
                .xAxisTitle("fine-tuning step").yAxisTitle("test accuracy").build();
        r.finetuning().forEach((mode, curve) -> {
            List<Double> x = new ArrayList<>();
            List<Double> y = new ArrayList<>();
            curve.stream().filter(p -> !Double.isNaN(p.testAccuracy())).forEach(p -> {
                x.add((double) p.step());
                y.add(p.testAccuracy());
            });
            if (!x.isEmpty()) {
                c.addSeries(mode + (x.size() < curve.size() ? " (diverged)" : ""), x, y);
            }
        });
        java.awt.image.BufferedImage img = BitmapEncoder.getBufferedImage(c);
        org.convbn.io.AtomicFiles.write(chart, o -> {
            if (!javax.imageio.ImageIO.write(img, "png", o)) {
                throw new java.io.IOException("no PNG writer available");
            }
        });
    }
}
