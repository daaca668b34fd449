package org.convbn.testkit.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.convbn.core.Mode;
import org.junit.jupiter.api.Test;

class ThreadSafetyDeclarationsTest {

    @Test
    void findsTheTypesThatStateNothingOrTooMuch() {
        String p = ThreadSafetyFixtures.class.getName();
        assertEquals(
                List.of(p + "$Contradictory", p + "$Counter", p + "$Silent"),
                ThreadSafetyDeclarations.undeclared(ThreadSafetyFixtures.class));
    }

    /** convbn-core, read from its class directory or jar. */
    @Test
    void everyPublicTypeOfCoreStatesItsThreadSafety() {
        assertEquals(List.of(), ThreadSafetyDeclarations.undeclared(Mode.class));
    }
}
