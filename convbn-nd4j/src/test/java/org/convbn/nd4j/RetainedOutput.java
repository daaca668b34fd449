package org.convbn.nd4j;

/** What a block keeps of its conv output between forward and backward, for tests of the modes' retained bytes. */
public final class RetainedOutput {
    private RetainedOutput() {}

    /** @return bytes of the conv output Y the block keeps (EVAL/TRAIN), 0 otherwise */
    public static long bytes(ConvBNBlock block) {
        var acts = block.retainedActivations();
        return acts.size() == 2 ? Tensors.bytes(acts.get(1)) : 0;
    }
}
