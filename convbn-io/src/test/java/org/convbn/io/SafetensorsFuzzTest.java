package org.convbn.io;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Fuzzes the safetensors reader: any input must either read into tensors that fit inside it, or be rejected
 * with a {@link SafetensorsException}; any other exception, an OutOfMemoryError or a crash is a finding. The
 * default build fuzzes for 10 s in its own surefire execution (JAZZER_FUZZ=1); docs/interop.md gives the longer
 * run. Seeds: src/test/resources/org/convbn/nd4j/io/SafetensorsFuzzTestInputs/.
 */
class SafetensorsFuzzTest {

    @FuzzTest(maxDuration = "10s")
    void readerRejectsOrReads(byte[] data) {
        Safetensors.Contents contents;
        try {
            contents = Safetensors.read(data);
        } catch (SafetensorsException rejected) {
            return;
        }
        // Each element came from at least 2 bytes of the input (F16/BF16; F32 from 4, F64 from 8).
        long sourceBytes = 0;
        for (Map.Entry<String, INDArray> e : contents.tensors().entrySet()) {
            sourceBytes += e.getValue().length() * (e.getValue().dataType().width() == 8 ? 8 : 2);
        }
        long consumed = sourceBytes;
        assertTrue(
                consumed <= data.length,
                () -> "read tensors needing " + consumed + " bytes from a " + data.length + "-byte input");
    }
}
