package org.convbn.train;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.Map;
import org.convbn.core.Mode;
import org.convbn.nd4j.Optimizer;
import org.convbn.net.GradientSink;
import org.convbn.net.ResNet;
import org.convbn.net.SoftmaxCrossEntropy;
import org.convbn.testkit.conformance.RelativeError;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Nesterovs;
import org.nd4j.linalg.learning.regularization.L2Regularization;

/**
 * {@link TrainingStep} updates each block inside the backward, as soon as its gradients exist: that gives exactly
 * the parameters that updating after the whole backward gives, in every mode.
 */
class TrainingStepUpdateTest {
    @Test
    void updatingInsideTheBackwardGivesWhatUpdatingAfterItGives() {
        INDArray x = Nd4j.rand(DataType.DOUBLE, 2, 3, 32, 32).subi(0.5);
        int[] labels = {1, 4};
        for (Mode mode : new Mode[] {Mode.TRAIN, Mode.EVAL, Mode.TUNE, Mode.DEPLOY}) {
            try (ResNet inside = ResNet.builder(ResNet.Variant.RESNET18)
                            .classes(5)
                            .dataType(DataType.DOUBLE)
                            .seed(7)
                            .mode(mode)
                            .build();
                    ResNet after = ResNet.builder(ResNet.Variant.RESNET18)
                            .classes(5)
                            .dataType(DataType.DOUBLE)
                            .seed(7)
                            .mode(mode)
                            .build()) {
                Optimizer a = new Optimizer(new Nesterovs(0.05, 0.9), new L2Regularization(1e-3));
                Optimizer b = new Optimizer(new Nesterovs(0.05, 0.9), new L2Regularization(1e-3));
                for (int step = 0; step < 3; step++) {
                    TrainingStep.run(inside, x, labels, a);
                    INDArray logits = after.forward(x);
                    Map<String, INDArray> grads = new LinkedHashMap<>();
                    after.backward(SoftmaxCrossEntropy.of(logits, labels).gradLogits(), GradientSink.into(grads));
                    b.step(after.parameters(), grads);
                }
                Map<String, INDArray> pa = inside.parameters();
                after.parameters().forEach((name, p) -> {
                    double err = RelativeError.of(
                            p.reshape(p.length()).toDoubleVector(),
                            pa.get(name).reshape(p.length()).toDoubleVector(),
                            0);
                    assertTrue(err == 0, () -> mode + " " + name + ": relative error " + err);
                });
            }
        }
    }
}
