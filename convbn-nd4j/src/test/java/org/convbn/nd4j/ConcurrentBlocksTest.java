package org.convbn.nd4j;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.convbn.core.Mode;
import org.convbn.testkit.conformance.ConcurrentRuns;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Nesterovs;

/**
 * Blocks trained in four threads at once give what they give one after the other: dilated convs among them (on
 * libnd4j's path they run with the process-wide platform-helpers switch off, counted across threads; before it was
 * counted, a thread could see another turn it back on under its dilated conv, which oneDNN rejects).
 */
class ConcurrentBlocksTest {
    /**
     * float32 on libnd4j's kernels: an op's reduction order follows the threads OpenMP gives it, which depends on what
     * else runs; rounding (6e-8) through a few steps. A job reading another's buffers, or a rejected op, is O(1).
     */
    static final double TOLERANCE = 1e-4;
    /** Gradients below this compare in absolute terms (see RelativeError). */
    static final double FLOOR = 1e-3;

    private static final int STEPS = 12;

    private static Supplier<Map<String, double[]>> job(ConvConfig conv, Mode mode, long seed) {
        return () -> {
            ConvBNConfig config = ConvBNConfig.of(conv);
            ConvBNBlock block = ConvBNBlock.initialized(config, DataType.FLOAT, seed);
            block.setMode(mode);
            Optimizer sgd = new Optimizer(new Nesterovs(0.05, 0.9));
            INDArray x = Nd4j.rand(seed, new long[] {2, conv.inChannels(), 12, 12})
                    .castTo(DataType.FLOAT)
                    .subi(0.5);
            Map<String, double[]> out = new LinkedHashMap<>();
            for (int s = 0; s < STEPS; s++) {
                INDArray y = block.forward(x);
                out.put("output " + s, flat(y));
                BlockGradients g = block.backward(y.mul(2.0 / y.length())); // d(mean y^2)/dy
                out.put("input gradient " + s, flat(g.input()));
                sgd.step(block.parameters(), g.parameters());
            }
            block.parameters().forEach((k, v) -> out.put(k, flat(v)));
            return out;
        };
    }

    private static double[] flat(INDArray a) {
        return a.dup().reshape(a.length()).toDoubleVector();
    }

    @Test
    void fourBlocksInFourThreadsMatchSequentialRuns() {
        ConvConfig dilated =
                ConvConfig.builder(4, 6).kernel(3).dilation(2).padding(2).build();
        ConvConfig dilatedStrided = ConvConfig.builder(4, 5)
                .kernel(3)
                .dilation(3)
                .stride(2)
                .padding(3)
                .build();
        ConvConfig plain = ConvConfig.builder(4, 6).kernel(3).padding(1).build();
        ConcurrentRuns.Outcome o = ConcurrentRuns.compare(
                List.of(
                        job(dilated, Mode.TUNE, 1),
                        job(dilatedStrided, Mode.TRAIN, 2),
                        job(dilated, Mode.EVAL, 3),
                        job(plain, Mode.EVAL, 4)),
                FLOOR);
        assertTrue(o.worst() <= TOLERANCE, o.errors().toString());
        assertTrue(PlatformHelpers.inside() == 0, "the platform-helpers switch is released");
        assertTrue(Nd4j.getEnvironment().helpersAllowed(), "platform helpers are back on");
    }
}
