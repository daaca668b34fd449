package org.convbn.nd4j.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/** Which kernels serve a type, the line that names them and the ND4J under them, and a fall-back named with why. */
class KernelChoiceTest {
    /** A faster provider whose natives are missing here: supports nothing, says why for FLOAT only. */
    private static final KernelsProvider MISSING = new KernelsProvider() {
        @Override
        public String name() {
            return "fast";
        }

        @Override
        public int priority() {
            return 5;
        }

        @Override
        public boolean supports(DataType type) {
            return false;
        }

        @Override
        public Kernels create(DataType type, Arena arena) {
            throw new AssertionError("never chosen");
        }

        @Override
        public String unavailableBecause(DataType type) {
            return type == DataType.FLOAT ? "its natives do not load" : null;
        }
    };

    @Test
    void theLineNamesTheKernelsAndNd4jsVersionAndBackend() {
        String line = Kernels.describeChoice(DataType.DOUBLE);
        assertTrue(line.startsWith("DOUBLE kernels: nd4j on ND4J 1.0.0-M2.1, CpuBackend ("), line);
        assertTrue(line.contains("onednn") && line.contains("openblas"), "the native build's features: " + line);
    }

    @Test
    void aFasterProviderThatCannotRunIsAFallBackNamedWithWhy() {
        KernelChoice c = KernelChoice.choose(DataType.FLOAT, List.of(MISSING, Nd4jKernels.PROVIDER), null);
        assertEquals("nd4j", c.provider().name());
        assertEquals(List.of("fast (its natives do not load)"), c.fallBacks());
        assertTrue(c.describe().endsWith("; not used: fast (its natives do not load)"), c.describe());
        // A type the faster provider never computes is no fall-back.
        assertEquals(
                List.of(),
                KernelChoice.choose(DataType.DOUBLE, List.of(MISSING, Nd4jKernels.PROVIDER), "")
                        .fallBacks());
    }

    @Test
    void aForcedProviderMustExistAndRun() {
        List<KernelsProvider> all = List.of(MISSING, Nd4jKernels.PROVIDER);
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> KernelChoice.choose(DataType.FLOAT, all, "fast"));
        assertEquals(
                "convbn.kernels: kernels \"fast\" do not support FLOAT here: its natives do not load", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> KernelChoice.choose(DataType.FLOAT, all, "cuda"));
        assertEquals("convbn.kernels: expected one of [fast, nd4j], got \"cuda\"", e.getMessage());
        assertEquals(
                "nd4j",
                KernelChoice.choose(DataType.FLOAT, all, "nd4j").provider().name());
    }
}
