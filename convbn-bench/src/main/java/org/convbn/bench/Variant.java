package org.convbn.bench;

import org.convbn.core.Mode;
import org.convbn.core.TuneFold;

/**
 * What the report measures: the four modes, TUNE that recomputes its folded weight in the backward, and EVAL and
 * TUNE on reversible stages.
 */
public enum Variant {
    TRAIN(Mode.TRAIN, TuneFold.KEEP, false),
    EVAL(Mode.EVAL, TuneFold.KEEP, false),
    DEPLOY(Mode.DEPLOY, TuneFold.KEEP, false),
    /** TUNE recomputing W' = s W in the backward, keeping only b', s (the library default). */
    TUNE(Mode.TUNE, TuneFold.RECOMPUTE, false),
    /** TUNE keeping W', b', s for the backward. */
    TUNE_KEEP(Mode.TUNE, TuneFold.KEEP, false),
    /** EVAL with reversible stages (activations rebuilt in the backward). */
    EVAL_REVERSIBLE(Mode.EVAL, TuneFold.KEEP, true),
    /** TUNE with reversible stages: both memory levers. */
    TUNE_REVERSIBLE(Mode.TUNE, TuneFold.RECOMPUTE, true),
    /** TUNE keeping W' for the backward, with reversible stages. */
    TUNE_KEEP_REVERSIBLE(Mode.TUNE, TuneFold.KEEP, true);

    private final Mode mode;
    private final TuneFold tuneFold;
    private final boolean reversible;

    Variant(Mode mode, TuneFold tuneFold, boolean reversible) {
        this.mode = mode;
        this.tuneFold = tuneFold;
        this.reversible = reversible;
    }

    /** @return whether the network's stages are reversible */
    public boolean reversible() {
        return reversible;
    }

    /** @return the block mode */
    public Mode mode() {
        return mode;
    }

    /** @return what TUNE keeps of its fold */
    public TuneFold tuneFold() {
        return tuneFold;
    }
}
