package org.convbn.nd4j;

import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class BatchNormStateTest {
    @Test
    void holdsTheParametersOwnArrays() {
        ConvBNConfig config = ConvBNConfig.of(ConvConfig.builder(2, 3).kernel(1).build());
        ConvBNParameters p = ConvBNParameters.initialize(config, DataType.DOUBLE, 1);
        BatchNormState bn = p.batchNorm();
        assertSame(p.gamma(), bn.gamma());
        assertSame(p.beta(), bn.beta());
        assertSame(p.runningMean(), bn.runningMean());
        assertSame(p.runningVar(), bn.runningVar());
    }

    @Test
    void refusesHalfAnAffineAndMissingStatistics() {
        INDArray v = Nd4j.ones(DataType.DOUBLE, 3);
        IllegalArgumentException half =
                assertThrows(IllegalArgumentException.class, () -> new BatchNormState(v, null, v, v));
        assertTrue(
                half.getMessage().contains("gamma, beta") && half.getMessage().contains("gamma only"),
                half.getMessage());
        IllegalArgumentException noMean =
                assertThrows(IllegalArgumentException.class, () -> new BatchNormState(null, null, null, v));
        assertTrue(noMean.getMessage().contains("bn.running_mean: expected an array, got null"), noMean.getMessage());
        IllegalArgumentException noWeight =
                assertThrows(IllegalArgumentException.class, () -> ConvBNParameters.of(null, null, null, null, v, v));
        assertTrue(noWeight.getMessage().contains("conv.weight: expected an array, got null"), noWeight.getMessage());
    }
}
