package org.convbn.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.Map;
import org.convbn.core.Mode;
import org.convbn.io.Safetensors;
import org.convbn.testkit.conformance.RelativeError;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A network of the zoo against torchvision's, float64, on the file {@code docs/interop/zoo_compare.py} writes for it
 * (torchvision's state_dict loaded strictly, its logits, every gradient and the running statistics after a TRAIN
 * step; the model named in the file's metadata). Runs when the system property {@value #PROPERTY} names that file,
 * or several separated by commas (each is 20 MB to 1 GB and needs PyTorch to make, so the default build does not
 * carry them):
 * {@code mvn -B test -pl convbn-networks -Dtest=ZooTorchvisionTest -Dconvbn.torchvision.reference=FILE[,FILE...]}.
 */
@EnabledIfSystemProperty(named = ZooTorchvisionTest.PROPERTY, matches = ".+")
class ZooTorchvisionTest {
    static final String PROPERTY = "convbn.torchvision.reference";
    /**
     * Two float64 implementations of up to 155 blocks with different summation orders (PyTorch's oneDNN convs,
     * libnd4j's im2col and depthwise loops, the fold in TUNE and DEPLOY): rounding only, ~1e-14 per layer.
     */
    static final double TOLERANCE = 1e-10;
    /**
     * Below this, a tensor is 0 in exact arithmetic and both sides hold rounding noise: in TRAIN, each projection
     * BN's bias gradient (a per-channel constant passes the next 1x1 conv as a constant, which the next BN's batch
     * mean removes), ~1e-15 here. Such tensors must be below it on both sides; every other tensor's largest entry is
     * far above it (the smallest, an SE bias gradient, ~1e-3).
     */
    static final double ZERO = 1e-12;

    @Test
    void everyModeComputesWhatTorchvisionComputes() throws IOException {
        for (String file : System.getProperty(PROPERTY).split(",")) {
            compare(Path.of(file.trim()));
        }
    }

    private static void compare(Path file) throws IOException {
        Safetensors.Contents contents = Safetensors.read(file);
        String model = contents.metadata().get("model");
        Map<String, INDArray> ref = contents.tensors();
        Map<String, INDArray> state = new LinkedHashMap<>();
        ref.forEach((k, v) -> {
            if (!k.contains(".grad.")
                    && !k.startsWith("train.after.")
                    && !k.equals("input")
                    && !k.equals("r")
                    && !k.endsWith(".logits")) {
                state.put(k, v);
            }
        });
        INDArray x = ref.get("input");
        INDArray r = ref.get("r");
        Map<Mode, Double> perMode = new EnumMap<>(Mode.class);
        for (Mode mode : Mode.values()) {
            double worst = 0;
            try (Network net = Zoo.create(model, 10, DataType.DOUBLE, 0)) {
                StateDict.load(net, state); // strict: every name and shape
                net.setMode(mode);
                String c = mode == Mode.TRAIN ? "train" : "eval";
                INDArray logits = net.forward(x);
                worst = Math.max(worst, check(mode + " logits", ref.get(c + ".logits"), logits));
                Map<String, INDArray> grads = net.backward(r);
                if (mode == Mode.DEPLOY) {
                    // the folded parameters have no torchvision gradient; the others (classifier, SE) do
                    int compared = 0;
                    for (Map.Entry<String, INDArray> g : grads.entrySet()) {
                        INDArray expected = ref.get(c + ".grad." + g.getKey());
                        if (expected != null) {
                            worst = Math.max(worst, check(mode + " grad " + g.getKey(), expected, g.getValue()));
                            compared++;
                        }
                    }
                    assertTrue(compared >= 2, "DEPLOY: the classifier's gradients at least");
                    perMode.put(mode, worst);
                    continue;
                }
                assertEquals(net.parameters().keySet(), grads.keySet());
                for (Map.Entry<String, INDArray> g : grads.entrySet()) {
                    worst = Math.max(
                            worst,
                            check(mode + " grad " + g.getKey(), ref.get(c + ".grad." + g.getKey()), g.getValue()));
                }
                if (mode == Mode.TRAIN) {
                    for (Map.Entry<String, INDArray> s : StateDict.of(net).entrySet()) {
                        if (s.getKey().contains("running_")) {
                            worst = Math.max(
                                    worst,
                                    check("running " + s.getKey(), ref.get("train.after." + s.getKey()), s.getValue()));
                        }
                    }
                }
                perMode.put(mode, worst);
            }
        }
        System.out.printf(
                "%s vs torchvision, float64, worst relative error per mode: %s%n",
                model,
                perMode.entrySet().stream()
                        .map(e -> String.format("%s %.1e", e.getKey(), e.getValue()))
                        .toList());
    }

    private static double check(String what, INDArray expected, INDArray actual) {
        if (expected.amaxNumber().doubleValue() < ZERO) {
            assertTrue(
                    actual.amaxNumber().doubleValue() < ZERO,
                    what + ": expected 0 (< " + ZERO + "), got " + actual.amaxNumber());
            return 0;
        }
        double e = RelativeError.of(
                expected.reshape(expected.length()).toDoubleVector(),
                actual.reshape(actual.length()).toDoubleVector(),
                0);
        assertTrue(e <= TOLERANCE, what + ": relative error " + e);
        return e;
    }
}
