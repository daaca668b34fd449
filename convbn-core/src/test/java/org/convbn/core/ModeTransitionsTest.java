package org.convbn.core;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ModeTransitionsTest {

    @Test
    void everythingButLeavingAnUnkeptDeployIsAllowed() {
        for (Mode from : Mode.values()) {
            for (Mode to : Mode.values()) {
                boolean refused = from == Mode.DEPLOY && to != Mode.DEPLOY;
                if (refused) {
                    IllegalModeTransitionException e = assertThrows(
                            IllegalModeTransitionException.class, () -> ModeTransitions.check(from, to, false));
                    assertTrue(e.getMessage().startsWith("cannot switch mode DEPLOY -> " + to));
                    assertTrue(e.from() == from && e.to() == to);
                } else {
                    assertDoesNotThrow(() -> ModeTransitions.check(from, to, false));
                }
                assertDoesNotThrow(() -> ModeTransitions.check(from, to, true));
            }
        }
    }

    @Test
    void foldAndUnfoldHappenOnlyAtTheDeployBoundary() {
        assertTrue(ModeTransitions.folds(Mode.TUNE, Mode.DEPLOY));
        assertFalse(ModeTransitions.folds(Mode.DEPLOY, Mode.DEPLOY));
        assertFalse(ModeTransitions.folds(Mode.TRAIN, Mode.EVAL));
        assertTrue(ModeTransitions.unfolds(Mode.DEPLOY, Mode.EVAL));
        assertFalse(ModeTransitions.unfolds(Mode.EVAL, Mode.TUNE));
    }

    @Test
    void nullModesAreNamed() {
        NullPointerException e =
                assertThrows(NullPointerException.class, () -> ModeTransitions.check(Mode.EVAL, null, true));
        assertTrue(e.getMessage().startsWith("to:"));
    }
}
