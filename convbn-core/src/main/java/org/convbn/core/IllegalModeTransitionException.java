package org.convbn.core;

import net.jcip.annotations.ThreadSafe;

/** Thrown when a block is asked to move between modes in a way its state cannot support. */
@ThreadSafe
public final class IllegalModeTransitionException extends IllegalStateException {
    private final Mode from;
    private final Mode to;

    public IllegalModeTransitionException(Mode from, Mode to, String reason) {
        super("cannot switch mode " + from + " -> " + to + ": " + reason);
        this.from = from;
        this.to = to;
    }

    /** @return the mode the block was in */
    public Mode from() {
        return from;
    }

    /** @return the mode that was asked for */
    public Mode to() {
        return to;
    }
}
