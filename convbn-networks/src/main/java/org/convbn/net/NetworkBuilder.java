package org.convbn.net;

import java.util.Objects;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.Mode;
import org.convbn.core.Precision;
import org.convbn.core.TuneFold;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The settings every network's builder has: classes, data type, seed, initial mode, TUNE's fold, and a group size
 * (what it groups is the network's to say). Validated by {@link #validate()} from each builder's {@code build()}.
 *
 * @param <B> the concrete builder, returned by every setter
 */
@NotThreadSafe
public abstract class NetworkBuilder<B extends NetworkBuilder<B>> {
    int classes = 1000;
    DataType dataType = DataType.FLOAT;
    Precision precision = Precision.FULL;
    long seed;
    Mode mode = Mode.EVAL;
    TuneFold tuneFold = TuneFold.RECOMPUTE;
    int groupSize;

    NetworkBuilder() {}

    @SuppressWarnings("unchecked")
    private B self() {
        return (B) this;
    }

    /** @param classes the head's output size, &gt;= 1 (default 1000) */
    public B classes(int classes) {
        this.classes = classes;
        return self();
    }

    /** @param dataType FLOAT (default) or DOUBLE */
    public B dataType(DataType dataType) {
        this.dataType = dataType;
        return self();
    }

    /**
     * @param precision how feature maps are stored (default {@link Precision#FULL}, in the data type); a bfloat16
     *                  precision needs the FLOAT data type
     */
    public B precision(Precision precision) {
        this.precision = precision;
        return self();
    }

    /** @param seed the seed of the first weight draw (each layer and the head take the next); default 0 */
    public B seed(long seed) {
        this.seed = seed;
        return self();
    }

    /** @param mode the initial mode of every block (default EVAL) */
    public B mode(Mode mode) {
        this.mode = mode;
        return self();
    }

    /** @param tuneFold what TUNE keeps of each block's fold (default {@link TuneFold#RECOMPUTE}) */
    public B tuneFold(TuneFold tuneFold) {
        this.tuneFold = tuneFold;
        return self();
    }

    /**
     * @param groupSize input channels per group of the network's grouped convs; 0 (default) keeps its own convs
     */
    public B groupSize(int groupSize) {
        this.groupSize = groupSize;
        return self();
    }

    /**
     * @param network what the network's convs are, for the message
     * @throws IllegalArgumentException naming the group size when it is set on a network whose convs have their own
     */
    void requireOwnGroups(String network) {
        if (groupSize != 0) {
            throw new IllegalArgumentException("groupSize: expected 0 (" + network + "), got " + groupSize);
        }
    }

    /**
     * @return {@code p}
     * @throws IllegalArgumentException naming the dropout when {@code p} is outside [0, 1)
     */
    static double checkDropout(double p) {
        if (!(p >= 0 && p < 1)) {
            throw new IllegalArgumentException("dropout: expected a value in [0, 1), got " + p);
        }
        return p;
    }

    /** @throws IllegalArgumentException naming the common setting that is out of range */
    void validate() {
        if (classes < 1) {
            throw new IllegalArgumentException("classes: expected >= 1, got " + classes);
        }
        if (dataType != DataType.FLOAT && dataType != DataType.DOUBLE) {
            throw new IllegalArgumentException("dataType: expected FLOAT or DOUBLE, got " + dataType);
        }
        Objects.requireNonNull(precision, "precision");
        if (precision.isBf16() && dataType != DataType.FLOAT) {
            throw new IllegalArgumentException(
                    "dataType: expected FLOAT for precision " + precision + " (float32 parameters), got " + dataType);
        }
        Objects.requireNonNull(mode, "mode");
        Objects.requireNonNull(tuneFold, "tuneFold");
        if (groupSize < 0) {
            throw new IllegalArgumentException("groupSize: expected >= 0, got " + groupSize);
        }
    }
}
