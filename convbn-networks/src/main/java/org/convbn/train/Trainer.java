package org.convbn.train;

import net.jcip.annotations.Immutable;
import net.jcip.annotations.NotThreadSafe;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;

import org.convbn.core.Mode;
import org.convbn.nd4j.Optimizer;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.net.ResNet;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A small training loop over an {@link InMemoryDataset}: shuffled mini-batches, one {@link ResNet#step} each, and the
 * test accuracy at regular intervals. The network trains in whatever mode it is in.
 */
@NotThreadSafe
public final class Trainer {
    private Trainer() {
    }

    /**
     * One point of a learning curve.
     *
     * @param step optimiser steps so far
     * @param epoch fractional epochs so far
     * @param trainLoss mean training loss since the previous point (NaN at step 0)
     * @param testAccuracy accuracy on the test set, 0..1
     */
    @Immutable
    public record Point(int step, double epoch, double trainLoss, double testAccuracy) {
    }

    /**
     * @param net trained in place, in its current mode
     * @param train shuffled each epoch with {@code seed}
     * @param test evaluated at step 0 and every {@code evalEvery} steps and at the end
     * @param optimizer the optimiser (its state persists across calls; its epoch is set at each epoch's start)
     * @param epochs full passes over {@code train} (the last partial batch is dropped)
     * @param batchSize examples per step
     * @param evalEvery steps between evaluations
     * @param progress receives each point as it is measured
     * @return the learning curve
     */
    public static List<Point> fit(ResNet net, InMemoryDataset train, InMemoryDataset test, Optimizer optimizer,
                                  int epochs, int batchSize, int evalEvery, long seed, Consumer<Point> progress) {
        if (batchSize < 1 || batchSize > train.size()) {
            throw new IllegalArgumentException("batchSize: expected 1.." + train.size() + ", got " + batchSize);
        }
        if (epochs < 0 || evalEvery < 1) {
            throw new IllegalArgumentException("epochs, evalEvery: expected >= 0 and >= 1, got " + epochs + ", "
                    + evalEvery);
        }
        List<Point> curve = new ArrayList<>();
        int stepsPerEpoch = train.size() / batchSize;
        Point start = new Point(0, 0, Double.NaN, accuracy(net, test, batchSize));
        curve.add(start);
        progress.accept(start);
        SplittableRandom rng = new SplittableRandom(seed);
        int step = 0;
        double lossSum = 0;
        int lossCount = 0;
        for (int epoch = 0; epoch < epochs; epoch++) {
            optimizer.setEpoch(epoch);
            int[] order = shuffled(train.size(), rng);
            for (int b = 0; b < stepsPerEpoch; b++) {
                InMemoryDataset.Batch batch = train.batch(order, b * batchSize, batchSize);
                lossSum += TrainingStep.run(net, batch.images(), batch.labels(), optimizer).loss();
                lossCount++;
                Arena.direct().release(batch.images());
                step++;
                boolean last = epoch == epochs - 1 && b == stepsPerEpoch - 1;
                if (step % evalEvery == 0 || last) {
                    Point p = new Point(step, (double) step / stepsPerEpoch, lossSum / lossCount,
                            accuracy(net, test, batchSize));
                    curve.add(p);
                    progress.accept(p);
                    lossSum = 0;
                    lossCount = 0;
                }
            }
        }
        return curve;
    }

    /**
     * The fraction of {@code data} the network classifies correctly. A network in TRAIN is evaluated in EVAL (running
     * statistics) and put back; the other modes are evaluated as they are.
     */
    public static double accuracy(ResNet net, InMemoryDataset data, int batchSize) {
        Mode mode = net.mode();
        if (mode == Mode.TRAIN) {
            net.setMode(Mode.EVAL);
        }
        int[] order = new int[data.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        int correct = 0;
        for (int from = 0; from < data.size(); from += batchSize) {
            int count = Math.min(batchSize, data.size() - from);
            InMemoryDataset.Batch batch = data.batch(order, from, count);
            INDArray logits = net.forward(batch.images());
            INDArray predicted = logits.argMax(1);
            for (int j = 0; j < count; j++) {
                if (predicted.getInt(j) == batch.labels()[j]) {
                    correct++;
                }
            }
            net.clearSaved();
            net.arena().release(logits);
            Arena.direct().release(predicted, batch.images());
        }
        if (mode == Mode.TRAIN) {
            net.setMode(mode);
        }
        return (double) correct / data.size();
    }

    private static int[] shuffled(int n, SplittableRandom rng) {
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        return order;
    }
}
