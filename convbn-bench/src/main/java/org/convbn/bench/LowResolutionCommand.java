package org.convbn.bench;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.IntStream;
import org.convbn.core.Mode;
import org.convbn.net.ResNet;
import org.convbn.net.StateDict;
import org.convbn.train.InMemoryDataset;
import org.convbn.train.data.FashionMnist;
import org.convbn.transfer.FineTuning;
import org.convbn.transfer.IdxBatches;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * Reduced-resolution training, then fine-tuning at the target resolution in EVAL, TUNE and DEPLOY: a ResNet-18
 * trains from scratch (TRAIN) on Fashion-MNIST downsampled to 14x14, then each mode fine-tunes a copy at 28x28 with
 * the same learning rate. EVAL and TUNE compute the same gradients; DEPLOY trains the folded weights, whose
 * per-channel learning rate is scaled by 1/s^2. Writes the learning curves as JSON and a PNG chart.
 */
@Command(
        name = "low-resolution",
        description = "Train at low resolution, then fine-tune at full resolution in EVAL, TUNE "
                + "and DEPLOY (Fashion-MNIST); writes curves and a chart.",
        mixinStandardHelpOptions = true)
final class LowResolutionCommand implements Callable<Integer> {
    @Option(
            names = "--data",
            description = "directory of the Fashion-MNIST IDX files (default: ${DEFAULT-VALUE}, "
                    + "Debian's dataset-fashion-mnist)")
    Path data = FashionMnist.DEBIAN_DIRECTORY;

    @Option(names = "--train-size", description = "training examples used (default: ${DEFAULT-VALUE})")
    int trainSize = 12_000;

    @Option(names = "--test-size", description = "test examples used (default: ${DEFAULT-VALUE})")
    int testSize = 2_000;

    @Option(
            names = "--low-resolution-factor",
            description = "pretraining downsamples by this factor " + "(default: ${DEFAULT-VALUE}: 14x14)")
    int factor = 2;

    @Option(names = "--pretrain-epochs", description = "epochs at low resolution (default: ${DEFAULT-VALUE})")
    int pretrainEpochs = 2;

    @Option(names = "--finetune-epochs", description = "epochs at full resolution per mode (default: ${DEFAULT-VALUE})")
    int finetuneEpochs = 1;

    @Option(names = "--batch", description = "batch size (default: ${DEFAULT-VALUE})")
    int batch = 64;

    @Option(names = "--pretrain-lr", description = "learning rate of pretraining (default: ${DEFAULT-VALUE})")
    double pretrainLearningRate = 0.02;

    @Option(
            names = "--lr",
            description = "learning rate of every fine-tuning, the same for all modes " + "(default: ${DEFAULT-VALUE})")
    double learningRate = 0.01;

    @Option(names = "--eval-every", description = "steps between test evaluations (default: ${DEFAULT-VALUE})")
    int evalEvery = 25;

    @Option(names = "--modes", split = ",", description = "fine-tuning modes (default: EVAL,TUNE,DEPLOY)")
    List<Mode> modes = List.of(Mode.EVAL, Mode.TUNE, Mode.DEPLOY);

    @Mixin
    ResultFiles files = new ResultFiles("finetune.json", "finetune.png");

    /**
     * One point of a learning curve.
     *
     * @param step optimiser steps so far
     * @param epoch fractional epochs so far
     * @param trainLoss mean training loss since the previous point (NaN at step 0)
     * @param testAccuracy accuracy on the test set, 0..1
     */
    record Point(int step, double epoch, double trainLoss, double testAccuracy) {}

    /** What the command writes. */
    record Result(
            String dataset,
            int trainSize,
            int testSize,
            int lowResolution,
            int resolution,
            double pretrainLearningRate,
            double learningRate,
            List<Point> pretraining,
            double pretrainedAccuracyLow,
            double pretrainedAccuracyFull,
            Map<String, List<Point>> finetuning,
            Map<String, Double> finetuneSeconds) {}

    @Override
    public Integer call() throws Exception {
        if (trainSize < batch || testSize < 1) {
            throw new IllegalArgumentException(
                    "--train-size, --test-size: expected >= --batch and >= 1, got " + trainSize + ", " + testSize);
        }
        if (evalEvery < 1 || pretrainEpochs < 1 || finetuneEpochs < 1) {
            throw new IllegalArgumentException("--eval-every, --pretrain-epochs, --finetune-epochs: expected >= 1, "
                    + "got " + evalEvery + ", " + pretrainEpochs + ", " + finetuneEpochs);
        }
        files.checkWritable();
        Nd4j.getMemoryManager().togglePeriodicGc(false);
        InMemoryDataset train = InMemoryDataset.of(FashionMnist.read(data, true), trainSize, 3, DataType.FLOAT);
        InMemoryDataset test = InMemoryDataset.of(FashionMnist.read(data, false), testSize, 3, DataType.FLOAT);
        InMemoryDataset trainLow = train.downsample(factor);
        InMemoryDataset testLow = test.downsample(factor);
        int full = (int) train.images().size(2);
        int low = full / factor;
        System.out.printf(
                Locale.ROOT,
                "Fashion-MNIST: %d train, %d test; ResNet-18, batch %d; pretraining at %dx%d "
                        + "(lr %.3g), fine-tuning at %dx%d (lr %.3g)%n",
                train.size(),
                test.size(),
                batch,
                low,
                low,
                pretrainLearningRate,
                full,
                full,
                learningRate);

        List<Point> pre;
        double accLow;
        double accFull;
        Map<String, INDArray> pretrained = new HashMap<>();
        try (FineTuning job = FineTuning.start(resnet18(), config(Mode.TRAIN, pretrainLearningRate, pretrainEpochs))) {
            pre = fit(
                    job,
                    batches(trainLow, true, 1),
                    batches(testLow, false, 1),
                    pretrainEpochs,
                    "pretrain " + low + "x" + low,
                    new ArrayList<>());
            accLow = job.evaluate(batches(testLow, false, 1)).accuracy();
            accFull = job.evaluate(batches(test, false, 1)).accuracy();
            StateDict.of(job.network()).forEach((k, v) -> pretrained.put(k, v.dup()));
        }
        System.out.printf(
                Locale.ROOT,
                "pretrained: test accuracy %.4f at %dx%d, %.4f at %dx%d%n",
                accLow,
                low,
                low,
                accFull,
                full,
                full);

        Map<String, List<Point>> curves = new LinkedHashMap<>();
        Map<String, Double> seconds = new LinkedHashMap<>();
        for (Mode mode : modes) {
            ResNet copy = resnet18();
            StateDict.load(copy, pretrained);
            long t0 = System.nanoTime();
            List<Point> curve = new ArrayList<>();
            try (FineTuning job = FineTuning.start(copy, config(mode, learningRate, finetuneEpochs))) {
                fit(job, batches(train, true, 2), batches(test, false, 2), finetuneEpochs, "fine-tune " + mode, curve);
            } catch (IllegalArgumentException | IllegalStateException e) {
                // A NaN loss stops the run, and the TUNE fold refuses NaN parameters by name: the run diverged. Keep
                // the curve up to there.
                System.out.println("  fine-tune " + mode + " diverged: " + e.getMessage());
                int step = curve.isEmpty() ? 0 : curve.get(curve.size() - 1).step();
                curve.add(new Point(step + 1, Double.NaN, Double.NaN, Double.NaN));
            }
            curves.put(mode.name(), curve);
            seconds.put(mode.name(), (System.nanoTime() - t0) / 1e9);
        }
        Result r = new Result(
                "Fashion-MNIST",
                train.size(),
                test.size(),
                low,
                full,
                pretrainLearningRate,
                learningRate,
                pre,
                accLow,
                accFull,
                curves,
                seconds);
        Json.writeAtomically(files.out, r);
        writeChart(r);
        System.out.println("final test accuracy after fine-tuning:");
        curves.forEach((m, c) -> System.out.printf(
                Locale.ROOT, "  %-6s %.4f (%.0f s)%n", m, c.get(c.size() - 1).testAccuracy(), seconds.get(m)));
        System.out.println("wrote " + files.out + " and " + files.chart);
        return 0;
    }

    private static ResNet resnet18() {
        return ResNet.builder(ResNet.Variant.RESNET18)
                .classes(FashionMnist.CLASSES.size())
                .dataType(DataType.FLOAT)
                .seed(1)
                .mode(Mode.TRAIN)
                .build();
    }

    /** SGD with Nesterov momentum 0.9 and coupled weight decay 1e-4 (PyTorch's SGD(nesterov=True, weight_decay)). */
    private static FineTuning.Config config(Mode mode, double lr, int epochs) {
        return FineTuning.Config.builder()
                .mode(mode)
                .optimizer(FineTuning.OptimizerKind.NESTEROV)
                .learningRate(lr)
                .weightDecay(1e-4)
                .schedule(FineTuning.LrSchedule.CONSTANT)
                .epochs(epochs)
                .build();
    }

    /** Every example of {@code data}, shuffled per epoch by {@code seed} when training (last partial batch dropped). */
    private IdxBatches batches(InMemoryDataset data, boolean train, long seed) {
        return new IdxBatches(
                data, IntStream.range(0, data.size()).toArray(), FashionMnist.CLASSES, batch, train, seed);
    }

    /**
     * Runs {@code epochs} epochs of the job, the test accuracy at step 0, every {@code --eval-every} steps and at the
     * end into {@code curve} (printed as they come).
     *
     * @return {@code curve}
     */
    private List<Point> fit(
            FineTuning job, IdxBatches train, IdxBatches test, int epochs, String phase, List<Point> curve) {
        Point start = new Point(0, 0, Double.NaN, job.evaluate(test).accuracy());
        curve.add(start);
        print(phase, start);
        int perEpoch = train.batchesPerEpoch();
        int[] step = {0};
        double[] lossSum = {0};
        int[] losses = {0};
        for (int e = 0; e < epochs; e++) {
            boolean lastEpoch = e == epochs - 1;
            job.runEpoch(train, null, (i, images, loss) -> {
                step[0]++;
                lossSum[0] += loss;
                losses[0]++;
                if (step[0] % evalEvery == 0 || lastEpoch && i == perEpoch - 1) {
                    Point p = new Point(
                            step[0],
                            (double) step[0] / perEpoch,
                            lossSum[0] / losses[0],
                            job.evaluate(test).accuracy());
                    curve.add(p);
                    print(phase, p);
                    lossSum[0] = 0;
                    losses[0] = 0;
                }
            });
        }
        return curve;
    }

    private static void print(String phase, Point p) {
        System.out.printf(
                Locale.ROOT,
                "  %-18s step %5d (epoch %.2f): train loss %.4f, test accuracy %.4f%n",
                phase,
                p.step(),
                p.epoch(),
                p.trainLoss(),
                p.testAccuracy());
    }

    private void writeChart(Result r) throws IOException {
        XYChart c = new XYChartBuilder()
                .width(900)
                .height(500)
                .title(String.format(
                        Locale.ROOT,
                        "Fine-tuning at %dx%d after training at %dx%d (lr %.3g)",
                        r.resolution(),
                        r.resolution(),
                        r.lowResolution(),
                        r.lowResolution(),
                        r.learningRate()))
                .xAxisTitle("fine-tuning step")
                .yAxisTitle("test accuracy")
                .build();
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
        Chart.write(files.chart, c);
    }
}
