package org.convbn.nd4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.convbn.core.Mode;
import org.convbn.testkit.conformance.ReadmeExample;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Nesterovs;
import org.nd4j.linalg.learning.regularization.L2Regularization;

/** The README's usage example, compiled and run; the README must show exactly these lines. */
class ReadmeExampleTest {

    @Test
    void exampleRunsAndLowersTheLoss() {
        List<Double> losses = new ArrayList<>();
        // spotless:off (the README shows these lines as they are)
        // README-BEGIN
        // A 3x3 conv 64 -> 128 with stride 2 followed by BatchNorm, float32, PyTorch's initialisation.
        ConvConfig conv = ConvConfig.builder(64, 128).kernel(3).stride(2).padding(1).bias(false).build();
        ConvBNBlock block = ConvBNBlock.initialized(ConvBNConfig.of(conv), DataType.FLOAT, 42);
        // (load pretrained tensors into block.unfoldedParameters(), or train in TRAIN mode first)

        block.setMode(Mode.TUNE);                      // statistics frozen, BN re-folded every forward
        Optimizer sgd = new Optimizer(new Nesterovs(0.05, 0.9), new L2Regularization(1e-4)); // ND4J's updaters
        INDArray x = Nd4j.rand(DataType.FLOAT, 2, 64, 28, 28);
        for (int step = 0; step < 3; step++) {
            INDArray z = block.forward(x);             // keeps only x (and b', s)
            INDArray dz = z.mul(2.0 / z.length());     // dL/dz for L = mean(z^2)
            BlockGradients grads = block.backward(dz); // dX and dW, dgamma, dbeta: exactly EVAL's
            sgd.step(block.parameters(), grads.parameters());
            losses.add(z.mul(z).meanNumber().doubleValue());
        }
        System.out.println(block.foldDiagnostics());  // range of s = gamma / sqrt(var + eps)

        block.setMode(Mode.DEPLOY);                    // fold once for inference
        INDArray y = block.forward(x);
        block.clearSaved();
        // README-END
        // spotless:on
        assertEquals(3, losses.size());
        assertTrue(losses.get(2) < losses.get(0), "loss falls: " + losses);
        assertEquals(List.of(2L, 128L, 14L, 14L), List.of(y.size(0), y.size(1), y.size(2), y.size(3)));
    }

    @Test
    void readmeShowsThisExample() throws IOException {
        assertEquals(
                List.of(),
                ReadmeExample.missingLines(
                        Path.of("src/test/java/org/convbn/nd4j/ReadmeExampleTest.java"),
                        Path.of("../README.md"),
                        "losses.add"),
                "README.md lacks these example lines");
    }
}
