package org.convbn.net;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.nd4j.kernel.Kernels;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A stage that rebuilds its activations in the backward instead of keeping them (dual-residual reversible
 * fine-tuning of a pretrained ResNet stage).
 *
 * <p>The first unit (stride / channel change) runs as usual and keeps what it needs. The others, with identity
 * shortcuts, become reversible with two streams starting at {@code x_0 = y_0 = first(input)}:
 * <pre>
 *   G_i(x) = relu(F_i(x) + alpha x)            F_i the unit's main path (its blocks and inner ReLUs)
 *   x_i = G_i(x_{i-1}) + beta y_{i-1}          y_i = x_{i-1}            output x_N
 *   inverse: x_{i-1} = y_i,  y_{i-1} = (x_i - G_i(y_i)) / beta
 * </pre>
 * The final ReLU sits inside G, so alpha = 1, beta = 0 is the pretrained unit {@code relu(F(x) + x)} exactly.
 * The backward walks the units last to first: recompute {@code G_i(y_i)} with the unit's forward (in TRAIN replaying
 * the forward's batch statistics, so running statistics are updated once), reconstruct {@code y_{i-1}}, backpropagate
 * {@code dx_i} through G (accumulating parameter gradients), then {@code dx_{i-1} = dy_i + J^T dx_i},
 * {@code dy_{i-1} = beta dx_i}; finally {@code dx_0 + dy_0} goes into the first unit.
 *
 * <p>Between forward and backward the stage keeps x_N and y_N only, whatever its depth; when beta is below
 * {@link #minBeta()} (reconstruction would divide by ~0) it keeps every unit's activations instead and backpropagates
 * them as a plain network would. Every {@code monitorEvery}-th forward can also keep the true inputs to measure the
 * reconstruction error.
 */
@NotThreadSafe
public final class ReversibleStage implements Stage {
    private final ResidualUnit first;
    private final List<ResidualUnit> units;
    private final Kernels kernels;
    private Coupling coupling = Coupling.PRETRAINED;
    private double minBeta;
    private int monitorEvery;
    private long forwards;
    private double lastReconstructionError = Double.NaN;

    // Between forward and backward:
    private Coupling used;
    private boolean stored;
    private INDArray head;
    private INDArray x;
    private INDArray y;
    private final List<INDArray> storedOutputs = new ArrayList<>();
    private List<INDArray> trueInputs;

    /**
     * @param first the stage's first unit (kept as usual)
     * @param units the following units, each with an identity shortcut
     * @param minBeta beta below which the stage keeps activations instead of reconstructing them, &gt;= 0
     * @throws IllegalArgumentException if a unit has a downsampling shortcut or minBeta is negative
     */
    public ReversibleStage(ResidualUnit first, List<ResidualUnit> units, double minBeta) {
        for (ResidualUnit u : units) {
            if (u.hasDownsample()) {
                throw new IllegalArgumentException("units: expected identity shortcuts after the first unit, got a "
                        + "downsampling one in " + u.blocks().get(0).convName());
            }
        }
        this.first = first;
        this.units = List.copyOf(units);
        this.kernels = first.kernels();
        for (ResidualUnit u : units) {
            if (u.kernels().arena() != kernels.arena()) {
                throw new IllegalArgumentException("units: expected units sharing the first unit's arena, got "
                        + u.blocks().get(0).convName() + " on another");
            }
        }
        setMinBeta(minBeta);
    }

    /** @return the coupling the next forward uses */
    public Coupling coupling() {
        return coupling;
    }

    /** Sets the coupling for the next forwards (drop any pending forward first: the backward uses the forward's). */
    public void setCoupling(Coupling c) {
        if (c == null) {
            throw new NullPointerException("coupling: expected a Coupling, got null");
        }
        this.coupling = c;
    }

    /** @return beta below which activations are kept instead of reconstructed */
    public double minBeta() {
        return minBeta;
    }

    /** @param value &gt;= 0; 0 reconstructs whenever beta &gt; 0 */
    public void setMinBeta(double value) {
        if (!(value >= 0)) {
            throw new IllegalArgumentException("minBeta: expected a value >= 0, got " + value);
        }
        this.minBeta = value;
    }

    /** @param every keep the true inputs on every {@code every}-th forward (0: never) to measure reconstruction */
    public void setMonitorEvery(int every) {
        if (every < 0) {
            throw new IllegalArgumentException("every: expected >= 0, got " + every);
        }
        this.monitorEvery = every;
    }

    /**
     * @return max over the reconstructed inputs of {@code max|y_rec - y_true| / max|y_true|} in the last monitored
     *         backward, or NaN when none was monitored
     */
    public double lastReconstructionError() {
        return lastReconstructionError;
    }

    /** @return whether the last forward kept activations (beta below minBeta) */
    public boolean lastForwardStored() {
        return stored;
    }

    @Override
    public INDArray forward(INDArray input) {
        clearSaved();
        used = coupling;
        stored = used.beta() == 0 || used.beta() < minBeta;
        boolean monitor = !stored && monitorEvery > 0 && forwards % monitorEvery == 0;
        forwards++;
        trueInputs = monitor ? new ArrayList<>() : null;
        head = first.forward(input);
        INDArray xi = head;
        INDArray yi = head;
        for (ResidualUnit u : units) {
            if (monitor) {
                trueInputs.add(kernels.copy(xi));
            }
            INDArray g = u.forward(xi, used.alpha(), false);
            INDArray next;
            if (stored) {
                next = kernels.copy(g); // the unit keeps g for its ReLU's backward
                storedOutputs.add(next);
            } else {
                u.releaseOwnership(); // nothing kept inside the unit; g is ours now
                next = g;
            }
            if (used.beta() != 0) {
                kernels.addInPlace(next, yi, used.beta());
            }
            if (!stored && yi != head) {
                kernels.arena().release(yi); // y_{i-1} = x_{i-2} is not needed again
            }
            yi = xi;
            xi = next;
        }
        x = xi;
        y = yi;
        return x;
    }

    @Override
    public void backwardWithoutInputGradient(INDArray g, GradientSink sink) {
        // the reconstruction runs through every unit's input gradient, so there is nothing to skip
        kernels.arena().release(backward(g, sink));
    }

    @Override
    public INDArray backward(INDArray g, GradientSink sink) {
        INDArray dx = g; // ours: the stage takes g over
        INDArray dy = null;
        INDArray xi = x;
        INDArray yi = y;
        double error = 0;
        for (int k = units.size() - 1; k >= 0; k--) {
            ResidualUnit u = units.get(k);
            INDArray dIn;
            if (stored) {
                dIn = u.backward(dx, sink);
            } else {
                INDArray recomputed = u.forward(yi, used.alpha(), true);
                // y_{i-1} = (x_i - G_i(y_i)) / beta, in place: x_i is the stage's own and not needed again.
                INDArray yPrev = xi.subi(recomputed).divi(used.beta());
                if (trueInputs != null) {
                    error = Math.max(error, relativeError(yPrev, trueInputs.get(Math.max(k - 1, 0))));
                }
                dIn = u.backward(dx, sink); // gives back the recomputed activations
                xi = yi;
                yi = yPrev;
            }
            INDArray dxPrev = dIn;
            if (dy != null) {
                kernels.addInPlace(dxPrev, dy, 1.0);
                kernels.arena().release(dy);
            }
            if (used.beta() == 0) {
                dy = null;
                kernels.arena().release(dx);
            } else {
                dy = dx;
                kernels.scaleInPlace(dy, used.beta()); // dy_{i-1} = beta dx_i, in place: dx_i is done with
            }
            dx = dxPrev;
        }
        if (!stored) {
            // The two reconstruction buffers (x_N's and y_N's, reused in place); the first unit's output is its own.
            releaseUnlessHead(xi);
            releaseUnlessHead(yi);
        }
        if (dy != null) {
            kernels.addInPlace(dx, dy, 1.0);
            kernels.arena().release(dy);
        }
        kernels.arena().release(storedOutputs.toArray(new INDArray[0]));
        storedOutputs.clear();
        if (trueInputs != null) {
            lastReconstructionError = error;
            kernels.arena().release(trueInputs.toArray(new INDArray[0]));
            trueInputs = null;
        }
        INDArray dInput = first.backwardConsuming(dx, sink);
        x = null;
        y = null;
        head = null;
        return dInput;
    }

    @Override
    public void clearSaved() {
        if (x != null && !stored) {
            // x_N and y_N are ours unless they are the first unit's output (head), which that unit gives back.
            releaseUnlessHead(x);
            if (y != x) {
                releaseUnlessHead(y);
            }
        }
        first.clearSaved();
        units.forEach(ResidualUnit::clearSaved);
        kernels.arena().release(storedOutputs.toArray(new INDArray[0]));
        storedOutputs.clear();
        if (trueInputs != null) {
            kernels.arena().release(trueInputs.toArray(new INDArray[0]));
        }
        head = null;
        x = null;
        y = null;
        trueInputs = null;
    }

    @Override
    public List<ResidualUnit> units() {
        List<ResidualUnit> all = new ArrayList<>();
        all.add(first);
        all.addAll(units);
        return Collections.unmodifiableList(all);
    }

    @Override
    public List<NamedBlock> blocks() {
        List<NamedBlock> all = new ArrayList<>(first.blocks());
        units.forEach(u -> all.addAll(u.blocks()));
        return Collections.unmodifiableList(all);
    }

    @Override
    public void collectRetained(List<INDArray> into) {
        first.collectRetained(into);
        if (x == null) {
            return;
        }
        if (stored) {
            units.forEach(u -> u.collectRetained(into));
            into.addAll(storedOutputs);
        } else {
            into.add(x);
            into.add(y);
        }
        if (trueInputs != null) {
            into.addAll(trueInputs);
        }
    }

    private void releaseUnlessHead(INDArray t) {
        if (t != head) {
            kernels.arena().release(t);
        }
    }

    private double relativeError(INDArray got, INDArray want) {
        INDArray diff = kernels.copy(got);
        kernels.addInPlace(diff, want, -1.0);
        double e = diff.amaxNumber().doubleValue() / Math.max(want.amaxNumber().doubleValue(), Double.MIN_NORMAL);
        kernels.arena().release(diff);
        return e;
    }
}
