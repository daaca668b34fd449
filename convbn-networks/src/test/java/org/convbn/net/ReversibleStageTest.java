package org.convbn.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.convbn.core.Mode;
import org.convbn.core.TuneFold;
import org.convbn.nd4j.ConvBNBlock;
import org.convbn.nd4j.ConvBNParameters;
import org.convbn.testkit.conformance.RelativeError;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Reversible stages against stored-activation backprop of the same function, and their memory. */
class ReversibleStageTest {
    /** alpha 1, beta 0 is the pretrained network: the same operations in the same order. */
    static final double PRETRAINED_TOLERANCE = 1e-12;
    /** Reconstruction at beta = 1 in float64 loses a few ulps per unit; gradients agree to this. */
    static final double BETA_ONE_TOLERANCE = 1e-8;

    static final int[] LABELS = {1, 4};

    private static INDArray input() {
        Nd4j.getRandom().setSeed(3);
        return Nd4j.rand(DataType.DOUBLE, 2, 3, 32, 32).subi(0.5);
    }

    @ParameterizedTest
    @EnumSource(
            value = Mode.class,
            names = {"TRAIN", "EVAL", "TUNE"})
    void alphaOneBetaZeroIsThePretrainedNetwork(Mode mode) {
        INDArray x = input();
        ResNet plain = ResNet.builder(ResNet.Variant.RESNET18)
                .classes(10)
                .dataType(DataType.DOUBLE)
                .seed(4)
                .mode(mode)
                .build();
        ResNet rev = ResNet.builder(ResNet.Variant.RESNET18)
                .classes(10)
                .dataType(DataType.DOUBLE)
                .seed(4)
                .mode(mode)
                .tuneFold(TuneFold.KEEP)
                .reversible(0.1)
                .build();
        rev.setCoupling(Coupling.PRETRAINED);
        INDArray a = plain.forward(x);
        INDArray b = rev.forward(x);
        close("logits", a, b, PRETRAINED_TOLERANCE);
        Map<String, INDArray> ga =
                plain.backward(SoftmaxCrossEntropy.of(a, LABELS).gradLogits());
        Map<String, INDArray> gb =
                rev.backward(SoftmaxCrossEntropy.of(b, LABELS).gradLogits());
        sameGradients(ga, gb, PRETRAINED_TOLERANCE);
        if (mode == Mode.TRAIN) {
            sameStatistics(plain, rev, PRETRAINED_TOLERANCE);
        }
    }

    @ParameterizedTest
    @EnumSource(
            value = Mode.class,
            names = {"TRAIN", "EVAL", "TUNE"})
    void reconstructionGivesTheStoredActivationGradientsAtBetaOne(Mode mode) {
        Map<Double, Double> errors = gradientErrorByBeta(mode, new double[] {1.0});
        assertTrue(errors.get(1.0) <= BETA_ONE_TOLERANCE, () -> mode + ": " + errors);
    }

    @Test
    void gradientErrorGrowsAsBetaShrinks() {
        double[] betas = {1.0, 0.5, 0.1, 0.01, 0.001};
        Map<Double, Double> errors = gradientErrorByBeta(Mode.TUNE, betas);
        System.out.println(
                "reversible vs stored gradients, float64, TUNE, alpha 1: max relative error by beta " + errors);
        for (double beta : betas) {
            assertTrue(Double.isFinite(errors.get(beta)), () -> "beta " + beta + ": " + errors);
        }
        assertTrue(errors.get(0.001) >= errors.get(1.0), () -> "error grows as beta shrinks: " + errors);
    }

    /**
     * Same parameters and coupling on a 6-unit stage (5 reversible units, so reconstructed inputs feed the
     * recomputes); one stage reconstructs (minBeta 0), the other keeps activations (minBeta 2).
     */
    private static Map<Double, Double> gradientErrorByBeta(Mode mode, double[] betas) {
        Nd4j.getRandom().setSeed(5);
        INDArray x = Nd4j.rand(DataType.DOUBLE, 2, 8, 12, 12).subi(0.5);
        INDArray g = Nd4j.rand(DataType.DOUBLE, 2, 8, 12, 12).subi(0.5);
        Map<Double, Double> out = new LinkedHashMap<>();
        for (double beta : betas) {
            ReversibleStage rec = stage(6, 0, DataType.DOUBLE, mode);
            ReversibleStage kept = stage(6, 2, DataType.DOUBLE, mode);
            Coupling c = new Coupling(1, beta);
            rec.setCoupling(c);
            kept.setCoupling(c);
            INDArray a = rec.forward(x);
            INDArray b = kept.forward(x);
            assertFalse(rec.lastForwardStored());
            assertTrue(kept.lastForwardStored());
            close("output", a, b, PRETRAINED_TOLERANCE);
            Map<String, INDArray> ga = new LinkedHashMap<>();
            Map<String, INDArray> gb = new LinkedHashMap<>();
            double worst = RelativeError.of(
                    flat(rec.backward(g.dup(), GradientSink.into(ga))),
                    flat(kept.backward(g.dup(), GradientSink.into(gb))),
                    1e-3);
            for (String k : gb.keySet()) {
                worst = Math.max(worst, RelativeError.of(flat(ga.get(k)), flat(gb.get(k)), 1e-3));
            }
            if (mode == Mode.TRAIN) {
                for (int i = 0; i < rec.blocks().size(); i++) {
                    var pa = rec.blocks().get(i).block().unfoldedParameters();
                    var pb = kept.blocks().get(i).block().unfoldedParameters();
                    close("running var " + i, pa.runningVar(), pb.runningVar(), PRETRAINED_TOLERANCE);
                    close("running mean " + i, pa.runningMean(), pb.runningMean(), PRETRAINED_TOLERANCE);
                }
            }
            out.put(beta, worst);
        }
        return out;
    }

    @Test
    void retainedBytesDoNotGrowWithDepth() {
        // From 3 units on: the first unit's input, inner ReLU output and output, then x_N and y_N (5 feature maps).
        // (With 2 units y_N is the first unit's output itself, one map less.)
        long[] retained = new long[3];
        int[] depths = {3, 5, 9};
        INDArray x = Nd4j.rand(DataType.DOUBLE, 2, 8, 12, 12);
        for (int d = 0; d < depths.length; d++) {
            ReversibleStage stage = stage(depths[d], 0.1);
            stage.setCoupling(new Coupling(1, 0.5));
            INDArray out = stage.forward(x);
            retained[d] = retainedActivationBytes(stage);
            stage.backward(Nd4j.onesLike(out), GradientSink.into(new LinkedHashMap<>()));
        }
        System.out.println("reversible stage retained activation bytes by depth " + Arrays.toString(depths) + ": "
                + Arrays.toString(retained));
        assertEquals(5L * 2 * 8 * 12 * 12 * 8, retained[0]);
        assertEquals(retained[0], retained[1]);
        assertEquals(retained[0], retained[2]);
        // And a stored-activation stage of the same depth keeps more, growing with depth.
        ReversibleStage stored = stage(9, 2);
        stored.setCoupling(new Coupling(1, 0.5));
        stored.forward(x);
        assertTrue(retainedActivationBytes(stored) > retained[2]);
    }

    @Test
    void monitorReportsReconstructionError() {
        ReversibleStage stage = stage(4, 0);
        stage.setMonitorEvery(1);
        INDArray x = Nd4j.rand(DataType.DOUBLE, 2, 8, 12, 12);
        for (double beta : new double[] {1.0, 0.1}) {
            stage.setCoupling(new Coupling(0.9, beta));
            INDArray out = stage.forward(x);
            stage.backward(Nd4j.onesLike(out), GradientSink.into(new LinkedHashMap<>()));
            double err = stage.lastReconstructionError();
            assertTrue(err >= 0 && err < 1e-9, "float64 reconstruction at beta " + beta + ": " + err);
        }
    }

    @Test
    void reconstructionErrorOverAlphaBetaGrid() {
        double[] alphas = {1.0, 0.75, 0.5};
        double[] betas = {1.0, 0.5, 0.1, 0.01};
        StringBuilder table = new StringBuilder("reconstruction error (max relative, 6-unit stage)\n");
        for (DataType type : new DataType[] {DataType.DOUBLE, DataType.FLOAT}) {
            for (double alpha : alphas) {
                table.append(type).append(" alpha ").append(alpha).append(':');
                for (double beta : betas) {
                    ReversibleStage st = stage(6, 0, type, Mode.TUNE);
                    st.setMonitorEvery(1);
                    st.setCoupling(new Coupling(alpha, beta));
                    Nd4j.getRandom().setSeed(8);
                    INDArray x = Nd4j.rand(type, 2, 8, 12, 12).subi(0.5);
                    INDArray out = st.forward(x);
                    st.backward(Nd4j.onesLike(out), GradientSink.into(new LinkedHashMap<>()));
                    double err = st.lastReconstructionError();
                    assertTrue(Double.isFinite(err), () -> type + " " + alpha + " " + beta);
                    if (beta == 1.0) {
                        assertTrue(err < (type == DataType.DOUBLE ? 1e-12 : 1e-4), () -> type + " beta 1: " + err);
                    }
                    table.append(String.format(Locale.ROOT, " beta %.2f %.1e;", beta, err));
                }
                table.append('\n');
            }
        }
        System.out.print(table);
    }

    @Test
    void schedulesRunFromBeta0ToOne() {
        for (Coupling.Schedule s :
                new Coupling.Schedule[] {Coupling.Schedule.linear(0.1, 0.5), Coupling.Schedule.cosine(0.1, 0.5)}) {
            assertEquals(new Coupling(1, 0.1), s.at(0));
            assertEquals(0.5, s.at(1).alpha(), 1e-15);
            assertEquals(1.0, s.at(1).beta(), 1e-15);
        }
        assertEquals(
                new Coupling(0.75, 0.55), Coupling.Schedule.linear(0.1, 0.5).at(0.5));
        assertEquals(0.55, Coupling.Schedule.cosine(0.1, 0.5).at(0.5).beta(), 1e-12);
        assertEquals(new Coupling(1, 0.3), Coupling.Schedule.constant(0.3).at(0.7));
        Assertions.assertThrows(IllegalArgumentException.class, () -> Coupling.Schedule.linear(0.1, 0.5)
                .at(1.5));
        Assertions.assertThrows(IllegalArgumentException.class, () -> new Coupling(1, -0.1));
    }

    /** A stage of basic units 8 -> 8 channels (3x3, 3x3) with identity shortcuts; the first unit likewise. */
    static ReversibleStage stage(int units, double minBeta) {
        return stage(units, minBeta, DataType.DOUBLE, Mode.TUNE);
    }

    static ReversibleStage stage(int units, double minBeta, DataType type, Mode mode) {
        SplittableRandom rng = new SplittableRandom(99);
        List<ResidualUnit> list = new ArrayList<>();
        long seed = 11;
        for (int u = 0; u < units; u++) {
            List<NamedBlock> main = new ArrayList<>();
            for (int b = 0; b < 2; b++) {
                ConvBNConfig c = ConvBNConfig.of(ConvConfig.builder(8, 8)
                        .kernel(3)
                        .padding(1)
                        .bias(false)
                        .build());
                ConvBNParameters p = ConvBNParameters.initialize(c, type, seed++);
                p.runningVar()
                        .assign(Nd4j.createFromArray(rng.doubles(8, 0.5, 1.5).toArray())
                                .castTo(type));
                main.add(new NamedBlock("u" + u + ".conv" + b, "u" + u + ".bn" + b, ConvBNBlock.of(c, p, mode)));
            }
            list.add(new ResidualUnit(main, null));
        }
        return new ReversibleStage(list.get(0), list.subList(1, list.size()), minBeta);
    }

    static long retainedActivationBytes(ReversibleStage stage) {
        Set<INDArray> all = Collections.newSetFromMap(new IdentityHashMap<>());
        stage.blocks().forEach(b -> all.addAll(b.block().retainedActivations()));
        List<INDArray> own = new ArrayList<>();
        stage.collectRetained(own);
        all.addAll(own);
        return all.stream().mapToLong(a -> a.length() * a.dataType().width()).sum();
    }

    private static void sameStatistics(ResNet a, ResNet b, double tol) {
        for (int i = 0; i < a.blocks().size(); i++) {
            var pa = a.blocks().get(i).block().unfoldedParameters();
            var pb = b.blocks().get(i).block().unfoldedParameters();
            close("running mean " + i, pa.runningMean(), pb.runningMean(), tol);
            close("running var " + i, pa.runningVar(), pb.runningVar(), tol);
        }
    }

    private static void sameGradients(Map<String, INDArray> a, Map<String, INDArray> b, double tol) {
        assertEquals(a.keySet(), b.keySet());
        a.forEach((k, v) -> close("d" + k, v, b.get(k), tol));
    }

    private static void close(String what, INDArray want, INDArray got, double tol) {
        double err = RelativeError.of(flat(want), flat(got), 1e-3);
        assertTrue(err <= tol, () -> what + ": relative error " + err + " > " + tol);
    }

    private static double[] flat(INDArray a) {
        return a.dup('c').castTo(DataType.DOUBLE).data().asDouble();
    }
}
