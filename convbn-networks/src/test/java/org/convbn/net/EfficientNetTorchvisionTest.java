package org.convbn.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
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
 * convbn's EfficientNet-B0 against torchvision's, float64, on the file {@code docs/interop/efficientnet_compare.py}
 * writes (torchvision's state_dict loaded strictly, its logits, every gradient and the running statistics after a
 * TRAIN step). Runs when the system property {@value #PROPERTY} names that file (it is ~100 MB and needs PyTorch
 * to make, so the default build does not carry it):
 * {@code mvn -B test -pl convbn-networks -Dtest=EfficientNetTorchvisionTest -Dconvbn.torchvision.efficientnet=FILE}.
 */
@EnabledIfSystemProperty(named = EfficientNetTorchvisionTest.PROPERTY, matches = ".+")
class EfficientNetTorchvisionTest {
    static final String PROPERTY = "convbn.torchvision.efficientnet";
    /**
     * Two float64 implementations of 49 blocks with different summation orders (PyTorch's oneDNN convs, libnd4j's
     * im2col and depthwise loops, the fold in TUNE and DEPLOY): rounding only, ~1e-14 per layer.
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
        Map<String, INDArray> ref = Safetensors.read(Path.of(System.getProperty(PROPERTY))).tensors();
        Map<String, INDArray> state = new LinkedHashMap<>();
        ref.forEach((k, v) -> {
            if (!k.contains(".grad.") && !k.startsWith("train.after.") && !k.equals("input") && !k.equals("r")
                    && !k.endsWith(".logits")) {
                state.put(k, v);
            }
        });
        INDArray x = ref.get("input");
        INDArray r = ref.get("r");
        double worst = 0;
        for (Mode mode : Mode.values()) {
            try (EfficientNet net = EfficientNet.builder().classes(10).dataType(DataType.DOUBLE).mode(Mode.EVAL)
                    .build()) {
                StateDict.load(net, state); // strict: every name and shape
                net.setStochastic(false);
                net.setMode(mode);
                String c = mode == Mode.TRAIN ? "train" : "eval";
                INDArray logits = net.forward(x);
                worst = Math.max(worst, check(mode + " logits", ref.get(c + ".logits"), logits));
                Map<String, INDArray> grads = net.backward(r);
                if (mode == Mode.DEPLOY) {
                    // the folded parameters have no torchvision gradient; the SE and classifier ones do
                    for (String k : new String[] {"classifier.1.weight", "features.5.2.block.2.fc1.weight"}) {
                        worst = Math.max(worst, check(mode + " " + k, ref.get(c + ".grad." + k), grads.get(k)));
                    }
                    continue;
                }
                assertEquals(net.parameters().keySet(), grads.keySet());
                for (Map.Entry<String, INDArray> g : grads.entrySet()) {
                    worst = Math.max(worst, check(mode + " grad " + g.getKey(), ref.get(c + ".grad." + g.getKey()),
                            g.getValue()));
                }
                if (mode == Mode.TRAIN) {
                    for (Map.Entry<String, INDArray> s : StateDict.of(net).entrySet()) {
                        if (s.getKey().contains("running_")) {
                            worst = Math.max(worst, check("running " + s.getKey(),
                                    ref.get("train.after." + s.getKey()), s.getValue()));
                        }
                    }
                }
            }
        }
        System.out.printf("EfficientNet-B0 vs torchvision, float64: worst relative error %.2e%n", worst);
    }

    private static double check(String what, INDArray expected, INDArray actual) {
        if (expected.amaxNumber().doubleValue() < ZERO) {
            assertTrue(actual.amaxNumber().doubleValue() < ZERO, what + ": expected 0 (< " + ZERO + "), got "
                    + actual.amaxNumber());
            return 0;
        }
        double e = RelativeError.of(expected.reshape(expected.length()).toDoubleVector(),
                actual.reshape(actual.length()).toDoubleVector(), 0);
        assertTrue(e <= TOLERANCE, what + ": relative error " + e);
        return e;
    }
}
