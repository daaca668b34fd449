package org.convbn.bench;

import org.convbn.core.Mode;
import org.convbn.core.TuneFold;

/**
 * What the DL4J comparison measures on the zoo's ResNet50: DL4J's own network fine-tuned with frozen BN, and the
 * same network converted to ConvBN layers.
 */
public enum Dl4jVariant {
    /** DL4J's ConvolutionLayer + BatchNormalization in FrozenLayerWithBackprop: how DL4J fine-tunes with frozen BN. */
    DL4J_FROZEN_BN(null, TuneFold.KEEP),
    /** Converted, EVAL (BN as a separate affine, Y kept). */
    DL4J_CONVERTED_EVAL(Mode.EVAL, TuneFold.KEEP),
    /** Converted, TUNE (the library's default: W' recomputed in the backward). */
    DL4J_CONVERTED_TUNE(Mode.TUNE, TuneFold.RECOMPUTE),
    /** Converted, TUNE keeping W' for the backward. */
    DL4J_CONVERTED_TUNE_KEEP(Mode.TUNE, TuneFold.KEEP);

    private final Mode mode;
    private final TuneFold tuneFold;

    Dl4jVariant(Mode mode, TuneFold tuneFold) {
        this.mode = mode;
        this.tuneFold = tuneFold;
    }

    /** @return the mode of the converted layers, or null for DL4J's own network */
    public Mode mode() {
        return mode;
    }

    /** @return what TUNE keeps of its fold */
    public TuneFold tuneFold() {
        return tuneFold;
    }
}
