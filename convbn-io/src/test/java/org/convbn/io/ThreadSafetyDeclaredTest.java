package org.convbn.io;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.convbn.testkit.conformance.ThreadSafetyDeclarations;
import org.junit.jupiter.api.Test;

/** Every public type of convbn-io states its thread safety (@ThreadSafe, @NotThreadSafe or @Immutable). */
class ThreadSafetyDeclaredTest {
    @Test
    void everyPublicTypeStatesItsThreadSafety() {
        assertEquals(List.of(), ThreadSafetyDeclarations.undeclared(Safetensors.class));
    }
}
