package org.convbn.core;

import net.jcip.annotations.ThreadSafe;

/**
 * The rules for switching a block between modes.
 *
 * <ul>
 *   <li>TRAIN, EVAL and TUNE share the same parameters (W, b, gamma, beta, running statistics), so any of
 *       them may switch to any other freely.</li>
 *   <li>Any mode may switch to DEPLOY: the block folds BN into the conv once.</li>
 *   <li>DEPLOY may switch back only when the block kept the BN tensors it folded (gamma, beta, running
 *       statistics); W and b are then recovered by inverting the fold, so training done in DEPLOY is
 *       carried back. Without them the fold cannot be undone and the switch is refused.</li>
 * </ul>
 */
@ThreadSafe
public final class ModeTransitions {
    private ModeTransitions() {}

    /**
     * Checks that a block may switch from {@code from} to {@code to}.
     *
     * @param from the current mode, not modified
     * @param to the requested mode, not modified
     * @param unfoldedKept whether the block kept its BN tensors when it folded (only read when {@code from} is DEPLOY)
     * @throws NullPointerException if a mode is null
     * @throws IllegalModeTransitionException if the switch is impossible, with the reason
     */
    public static void check(Mode from, Mode to, boolean unfoldedKept) {
        if (from == null) {
            throw new NullPointerException("from: expected a mode, got null");
        }
        if (to == null) {
            throw new NullPointerException("to: expected a mode, got null");
        }
        if (from == Mode.DEPLOY && to != Mode.DEPLOY && !unfoldedKept) {
            throw new IllegalModeTransitionException(
                    from,
                    to,
                    "the block was folded without keeping gamma, beta and the running statistics, so W and b "
                            + "cannot be recovered from the folded W' and b'; build it with keepUnfolded(true) "
                            + "to allow leaving DEPLOY");
        }
    }

    /** @return true when switching from {@code from} to {@code to} requires folding BN into the conv */
    public static boolean folds(Mode from, Mode to) {
        return from != Mode.DEPLOY && to == Mode.DEPLOY;
    }

    /** @return true when switching from {@code from} to {@code to} requires inverting the fold */
    public static boolean unfolds(Mode from, Mode to) {
        return from == Mode.DEPLOY && to != Mode.DEPLOY;
    }
}
