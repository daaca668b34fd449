package org.convbn.dl4j;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.convbn.core.Mode;
import org.convbn.testkit.conformance.ConcurrentRuns;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.learning.config.Nesterovs;

/**
 * Converted DL4J networks (workspaces on) trained in three threads at once give what they give one after the other:
 * a ConvBN layer keeps its block, kernels and pending forward to itself, and DL4J's workspaces are per thread.
 */
class ConcurrentConvertedNetworksTest {
    /**
     * float32 on the oneDNN kernels and float64 on ND4J's, three fit steps: reductions split over however many
     * OpenMP threads a call gets. A layer reading another's arrays is O(1).
     */
    static final double TOLERANCE = 1e-4;
    /** Parameters below this compare in absolute terms (see RelativeError). */
    static final double FLOOR = 1e-3;

    private static Supplier<Map<String, double[]>> job(Mode mode, DataType type, long seed) {
        return () -> {
            ComputationGraph net = Dl4jFixtures.converted(mode, type, new Nesterovs(0.05, 0.9), seed);
            Map<String, double[]> out = new LinkedHashMap<>();
            double[] scores = new double[3];
            for (int s = 0; s < scores.length; s++) {
                net.fit(new DataSet(Dl4jFixtures.input(type, seed + s), Dl4jFixtures.labels(type, seed + s)));
                scores[s] = net.score();
            }
            out.put("scores", scores);
            out.put("parameters", net.params().dup().toDoubleVector());
            out.put(
                    "output",
                    net.outputSingle(Dl4jFixtures.input(type, seed))
                            .dup()
                            .reshape(-1)
                            .toDoubleVector());
            return out;
        };
    }

    @Test
    void threeConvertedNetworksInThreeThreadsMatchSequentialRuns() {
        ConcurrentRuns.Outcome o = ConcurrentRuns.compare(
                List.of(
                        job(Mode.TUNE, DataType.FLOAT, 1),
                        job(Mode.EVAL, DataType.FLOAT, 2),
                        job(Mode.TRAIN, DataType.DOUBLE, 3)),
                FLOOR);
        assertTrue(o.worst() <= TOLERANCE, "worst " + o.worst() + ": " + o.errors());
    }
}
