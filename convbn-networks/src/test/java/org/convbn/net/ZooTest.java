package org.convbn.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.convbn.core.Mode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Every model of the zoo against torchvision's: every state_dict name and shape (the lists
 * {@code docs/interop/zoo_names.py} wrote from torchvision 0.14, under {@code src/test/resources/torchvision}), the
 * parameter count, and what {@link Zoo#create} promises.
 */
class ZooTest {
    static List<String> names() {
        return Zoo.names();
    }

    @ParameterizedTest
    @MethodSource("names")
    void everyNameShapeAndTheParameterCountAreTorchvisions(String name) throws IOException {
        Reference ref = reference(name);
        try (Network net = Zoo.create(name, 1000, DataType.FLOAT, 1)) {
            Map<String, INDArray> ours = StateDict.of(net);
            assertEquals(
                    List.copyOf(ref.shapes().keySet()).stream().sorted().toList(),
                    ours.keySet().stream().sorted().toList(),
                    name + ": state_dict names");
            ours.forEach((k, v) -> assertTrue(
                    Arrays.equals(ref.shapes().get(k), v.shape()),
                    name + " " + k + ": " + Arrays.toString(v.shape()) + ", torchvision "
                            + Arrays.toString(ref.shapes().get(k))));
            assertEquals(ref.parameters(), net.totalCost(224, 224).parameters(), name + ": parameters");
            assertEquals(
                    ref.parameters(),
                    net.parameters().values().stream()
                            .mapToLong(INDArray::length)
                            .sum(),
                    name + ": trainable tensors");
            assertEquals(name, net.name());
            assertEquals(Mode.EVAL, net.mode());
            assertEquals(1000, net.classes());
            if (net instanceof InvertedResidualNetwork irn) {
                assertFalse(irn.stochastic(), name + ": dropout and stochastic depth off");
            }
        }
    }

    @Test
    void anUnknownNameListsTheKnownOnes() {
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> Zoo.create("resnet51", 10, DataType.FLOAT, 0));
        assertTrue(
                e.getMessage().contains("resnet51")
                        && e.getMessage().contains("mobilenet_v2")
                        && e.getMessage().contains("efficientnet_b3"),
                e.getMessage());
    }

    /** torchvision's names and shapes of one model, and its parameter count (from the file's header). */
    record Reference(Map<String, long[]> shapes, long parameters) {}

    static Reference reference(String model) throws IOException {
        Map<String, long[]> m = new LinkedHashMap<>();
        long parameters = -1;
        try (InputStream in = ZooTest.class.getResourceAsStream("/torchvision/" + model + ".tsv")) {
            assertTrue(in != null, "no name list for " + model + " (run docs/interop/zoo_names.py)");
            for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
                if (line.startsWith("#")) {
                    Matcher count = Pattern.compile("; (\\d+) parameters").matcher(line);
                    if (count.find()) {
                        parameters = Long.parseLong(count.group(1));
                    }
                    continue;
                }
                if (!line.isBlank()) {
                    String[] f = line.split("\t");
                    m.put(
                            f[0],
                            Arrays.stream(f[1].split(","))
                                    .mapToLong(Long::parseLong)
                                    .toArray());
                }
            }
        }
        return new Reference(m, parameters);
    }
}
