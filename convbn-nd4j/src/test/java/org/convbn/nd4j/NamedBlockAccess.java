package org.convbn.nd4j;

/** Test access to a block's pending state. */
public final class NamedBlockAccess {
    private NamedBlockAccess() {
    }

    /** @return bytes of the conv output Y the block keeps (EVAL/TRAIN), 0 otherwise */
    public static long outputBytes(ConvBNBlock block) {
        var acts = block.retainedActivations();
        return acts.size() == 2 ? Tensors.bytes(acts.get(1)) : 0;
    }
}
