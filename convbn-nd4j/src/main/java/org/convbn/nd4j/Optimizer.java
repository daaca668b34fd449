package org.convbn.nd4j;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import net.jcip.annotations.NotThreadSafe;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.GradientUpdater;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.learning.regularization.Regularization;

/**
 * Applies one of ND4J's updaters ({@link org.nd4j.linalg.learning.config.Sgd},
 * {@link org.nd4j.linalg.learning.config.Nesterovs}, {@link org.nd4j.linalg.learning.config.Adam}, ... with their
 * learning-rate schedules from {@code org.nd4j.linalg.schedule}) and ND4J's regularizations
 * ({@link org.nd4j.linalg.learning.regularization.L2Regularization}: coupled weight decay, PyTorch SGD's
 * {@code weight_decay}; {@link org.nd4j.linalg.learning.regularization.WeightDecay}: decoupled, with Adam as AdamW)
 * to parameters one at a time, in DL4J's order: regularizations applied before the updater go into the gradient,
 * the updater turns the gradient into an update, regularizations applied after it add to the update, and
 * {@code p -= update}. Updater state (momentum, Adam's moments) is kept per parameter name.
 *
 * <p>One at a time is what lets a network update each block as soon as its gradients exist and free them at once,
 * instead of holding every gradient until the backward ends. Not thread-safe.
 */
@NotThreadSafe
public final class Optimizer {
    private final IUpdater updater;
    private final List<Regularization> regularization;
    private final Map<String, GradientUpdater<?>> state = new HashMap<>();
    private final Map<String, INDArray> stateArrays = new HashMap<>();
    private int iteration;
    private int epoch;

    /**
     * @param updater the update rule and its learning rate or schedule (cloned, so the caller's stays untouched)
     * @param regularization applied in the order given within their step (before or after the updater)
     */
    public Optimizer(IUpdater updater, Regularization... regularization) {
        if (updater == null) {
            throw new NullPointerException("updater: expected an IUpdater, got null");
        }
        this.updater = updater.clone();
        this.regularization = List.of(regularization.clone());
    }

    /** @return the updater configuration */
    public IUpdater updater() {
        return updater;
    }

    /** @return the regularizations */
    public List<Regularization> regularization() {
        return regularization;
    }

    /** @return iterations completed ({@link #iterationDone()} calls): the schedules' step count */
    public int iteration() {
        return iteration;
    }

    /** @return the epoch the schedules see */
    public int epoch() {
        return epoch;
    }

    /** Sets the epoch the schedules see (per-epoch schedules). */
    public void setEpoch(int epoch) {
        if (epoch < 0) {
            throw new IllegalArgumentException("epoch: expected >= 0, got " + epoch);
        }
        this.epoch = epoch;
    }

    /** Marks the end of an iteration (one optimiser step of every parameter): schedules advance. */
    public void iterationDone() {
        iteration++;
    }

    /** @return the learning rate at the current iteration and epoch */
    public double learningRate() {
        return updater.getLearningRate(iteration, epoch);
    }

    /**
     * Updates one parameter in place.
     *
     * @param name the parameter's name, the key of its updater state
     * @param parameter modified: {@code p -= update}
     * @param gradient dL/dp, same shape; modified: it becomes the update (the caller frees it afterwards)
     * @throws IllegalArgumentException if the shapes differ, or the name's state was made for another size
     */
    public void apply(String name, INDArray parameter, INDArray gradient) {
        if (!Arrays.equals(parameter.shape(), gradient.shape())) {
            throw new IllegalArgumentException("gradient: expected shape " + Arrays.toString(parameter.shape())
                    + " for " + name + ", got " + Arrays.toString(gradient.shape()));
        }
        long n = parameter.length();
        INDArray g = gradient.reshape('c', 1, n);
        INDArray p = parameter.reshape('c', 1, n);
        double lr = learningRate();
        for (Regularization r : regularization) {
            if (r.applyStep() == Regularization.ApplyStep.BEFORE_UPDATER) {
                r.apply(p, g, lr, iteration, epoch);
            }
        }
        updaterFor(name, parameter).applyUpdater(g, iteration, epoch);
        for (Regularization r : regularization) {
            if (r.applyStep() == Regularization.ApplyStep.POST_UPDATER) {
                r.apply(p, g, lr, iteration, epoch);
            }
        }
        parameter.subi(gradient);
    }

    /**
     * One optimiser step of every parameter, then {@link #iterationDone()}.
     *
     * @param parameters by name, modified in place
     * @param gradients by the same names, modified (they become the updates)
     * @throws IllegalArgumentException if a parameter has no gradient
     */
    public void step(Map<String, INDArray> parameters, Map<String, INDArray> gradients) {
        for (Map.Entry<String, INDArray> e : parameters.entrySet()) {
            INDArray g = gradients.get(e.getKey());
            if (g == null) {
                throw new IllegalArgumentException(
                        "gradients: expected an entry for " + e.getKey() + ", got " + gradients.keySet());
            }
            apply(e.getKey(), e.getValue(), g);
        }
        iterationDone();
    }

    /** @return the updater state arrays by parameter name (live), for checkpoints */
    public Map<String, INDArray> state() {
        return Collections.unmodifiableMap(stateArrays);
    }

    /**
     * Restores the state a checkpoint took with {@link #state()} and {@link #iteration()}: the updater state of each
     * name (copied), the iteration count and the epoch. Names not given start from fresh state when first applied.
     *
     * @param stateByName updater state arrays by parameter name, not modified
     * @param iteration iterations completed, &gt;= 0
     * @param epoch the epoch the schedules see, &gt;= 0
     * @throws IllegalArgumentException for a negative count, or a state array that is not a row {@code [1, n]}
     */
    public void restore(Map<String, INDArray> stateByName, int iteration, int epoch) {
        if (iteration < 0) {
            throw new IllegalArgumentException("iteration: expected >= 0, got " + iteration);
        }
        setEpoch(epoch);
        for (Map.Entry<String, INDArray> e : stateByName.entrySet()) {
            INDArray a = e.getValue();
            if (a.rank() != 2 || a.size(0) != 1) {
                throw new IllegalArgumentException(
                        "state of " + e.getKey() + ": expected shape [1, n], got " + Arrays.toString(a.shape()));
            }
        }
        state.clear();
        stateArrays.clear();
        for (Map.Entry<String, INDArray> e : stateByName.entrySet()) {
            INDArray view = e.getValue().dup('c');
            state.put(e.getKey(), updater.instantiate(view, false));
            stateArrays.put(e.getKey(), view);
        }
        this.iteration = iteration;
    }

    /** @return the names with updater state, in no particular order */
    public List<String> names() {
        return new ArrayList<>(stateArrays.keySet());
    }

    private GradientUpdater<?> updaterFor(String name, INDArray parameter) {
        GradientUpdater<?> u = state.get(name);
        long n = parameter.length();
        if (u == null) {
            long size = updater.stateSize(n);
            INDArray view = size == 0 ? null : Nd4j.zeros(parameter.dataType(), 1, size);
            u = updater.instantiate(view, true);
            state.put(name, u);
            if (view != null) {
                stateArrays.put(name, view);
            }
        } else if (stateArrays.containsKey(name) && stateArrays.get(name).length() != updater.stateSize(n)) {
            throw new IllegalArgumentException("parameter: " + name + " has " + n + " elements, but its updater state "
                    + "was made for another size");
        }
        return u;
    }
}
