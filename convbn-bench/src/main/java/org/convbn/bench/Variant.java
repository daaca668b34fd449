package org.convbn.bench;

import org.convbn.core.Mode;
import org.convbn.core.TuneFold;

/** What the report measures: the four modes, and TUNE that recomputes its folded weight in the backward. */
public enum Variant {
    TRAIN(Mode.TRAIN, TuneFold.KEEP),
    EVAL(Mode.EVAL, TuneFold.KEEP),
    DEPLOY(Mode.DEPLOY, TuneFold.KEEP),
    /** TUNE keeping W', b', s for the backward (the library default). */
    TUNE(Mode.TUNE, TuneFold.KEEP),
    /** TUNE keeping only b', s and recomputing W' = s W in the backward. */
    TUNE_RECOMPUTE(Mode.TUNE, TuneFold.RECOMPUTE);

    private final Mode mode;
    private final TuneFold tuneFold;

    Variant(Mode mode, TuneFold tuneFold) {
        this.mode = mode;
        this.tuneFold = tuneFold;
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
