package org.convbn.onednn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.convbn.core.ConvConfig;
import org.convbn.core.proxy.Activation;
import org.convbn.core.proxy.ProxyNormConfig;
import org.convbn.nd4j.BlockGradients;
import org.convbn.nd4j.ConvProxyNormBlock;
import org.convbn.nd4j.ProxyNormParameters;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.Layout;
import org.convbn.nd4j.kernel.PooledArena;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The proxy-normalised block on oneDNN's float32 kernels, in NCHW and in blocks of 8 and 16 (whatever the CPU), against
 * the same block in float64 on ND4J's kernels (itself checked against finite differences in convbn-nd4j): output and
 * every gradient, the exact retained bytes, and a pooled arena that gets every array back.
 */
class OnednnProxyNormBlockTest {
    /**
     * float32 against float64, relative to each tensor's largest magnitude: a conv, the group statistics over ~500
     * values and a few per-channel steps, each a few float32 roundings of order-one values (z measured below 5e-7);
     * the parameter gradients sum ~1000 products.
     */
    private static final double FLOAT32_RELATIVE = 1e-4;
    /**
     * Smallest scale of a compared tensor: with the IDENTITY activation beta's gradient is 0 in exact arithmetic (a
     * shift of a moves mu alike) and both sides hold rounding noise, float32's of sums of ~500 order-one terms.
     */
    private static final double GRADIENT_FLOOR = 1e-1;

    /**
     * Each case: the forced layout, channels per GroupNorm group (16 narrows a BLOCKED16 block to nothing smaller; 8
     * makes it BLOCKED8), activation, stride.
     */
    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        for (Layout layout : new Layout[] {Layout.NCHW, Layout.BLOCKED8, Layout.BLOCKED16}) {
            for (int perGroup : new int[] {8, 16}) {
                for (Activation phi : Activation.values()) {
                    cases.add(Arguments.of(layout, perGroup, phi, phi == Activation.RELU ? 2 : 1));
                }
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} {1} per group {2} stride {3}")
    @MethodSource("cases")
    void matchesTheFloat64BlockAndGivesEveryArrayBack(Layout layout, int perGroup, Activation phi, int stride) {
        int in = 16;
        int out = 32;
        ConvConfig conv = ConvConfig.builder(in, out)
                .kernel(3)
                .padding(1)
                .stride(stride)
                .groups(2)
                .bias(true)
                .build();
        ProxyNormConfig norm = ProxyNormConfig.groupNorm(out, out / perGroup, phi);
        ProxyNormParameters p64 = perturbed(ProxyNormParameters.initialize(conv, DataType.DOUBLE, 7));
        ConvProxyNormBlock reference = new ConvProxyNormBlock(conv, norm, p64);
        INDArray x64 = Nd4j.rand(11, new long[] {2, in, 9, 7})
                .castTo(DataType.DOUBLE)
                .subi(0.5)
                .muli(2);
        INDArray z64 = reference.forward(x64);
        INDArray g64 = Nd4j.rand(12, z64.shape()).castTo(DataType.DOUBLE).subi(0.5);
        BlockGradients want = reference.backward(g64);

        try (PooledArena arena = Arena.pooled();
                Kernels k = new OnednnKernels(arena, layout)) {
            ConvProxyNormBlock block = new ConvProxyNormBlock(conv, norm, toFloat(p64), k);
            Layout expected = Layout.largestFitting(layout, perGroup);
            assertEquals(expected, block.outputLayout());
            INDArray x = k.relayout(x64.castTo(DataType.FLOAT), Layout.largestFitting(layout, in));
            INDArray z = block.forward(x);
            assertEquals(expected, Layout.of(z));
            close("z", z64, k, z);

            long[] logical = Layout.logicalShape(z);
            long kept = block.retainedActivations().stream()
                    .mapToLong(a -> a.length() * a.dataType().width())
                    .sum();
            assertEquals(
                    (x.length() + logical[0] * logical[1] * logical[2] * logical[3] + logical[0] * norm.groups())
                            * Float.BYTES,
                    kept,
                    "x, y and the group statistics, exactly");

            INDArray g = k.relayout(g64.castTo(DataType.FLOAT), expected);
            BlockGradients got = block.backward(g);
            assertEquals(List.of(), block.retainedActivations(), "the backward gives back what the forward kept");
            close("dx", want.input(), k, got.input());
            for (Map.Entry<String, INDArray> e : want.parameters().entrySet()) {
                close(e.getKey(), e.getValue(), k, got.parameter(e.getKey()));
            }
            arena.release(x, z, g, got.input());
            got.parameters().values().forEach(arena::release);
            assertEquals(0, arena.stats().leasedBytes(), "every array the block handed out came back");
        }
    }

    /** Trained-looking PN parameters, so that every gradient path carries weight. */
    private static ProxyNormParameters perturbed(ProxyNormParameters p) {
        long seed = 3;
        for (INDArray a : new INDArray[] {p.gamma(), p.beta(), p.betaTilde(), p.gammaTilde()}) {
            a.addi(Nd4j.rand(seed++, new long[] {a.length()})
                    .castTo(a.dataType())
                    .subi(0.5)
                    .muli(0.4));
        }
        return p;
    }

    private static ProxyNormParameters toFloat(ProxyNormParameters p) {
        return new ProxyNormParameters(
                p.weight().castTo(DataType.FLOAT),
                p.bias().castTo(DataType.FLOAT),
                p.gamma().castTo(DataType.FLOAT),
                p.beta().castTo(DataType.FLOAT),
                p.betaTilde().castTo(DataType.FLOAT),
                p.gammaTilde().castTo(DataType.FLOAT));
    }

    /** @param got a feature map in any layout (compared in NCHW) or a parameter gradient, not modified */
    private static void close(String what, INDArray want, Kernels k, INDArray got) {
        boolean blocked = got.rank() == 5;
        INDArray plain = blocked ? k.relayout(got, Layout.NCHW) : got;
        double scale = Math.max(GRADIENT_FLOOR, want.amaxNumber().doubleValue());
        double worst = want.sub(plain.castTo(DataType.DOUBLE)).amaxNumber().doubleValue() / scale;
        if (blocked) {
            k.arena().release(plain);
        }
        assertTrue(worst <= FLOAT32_RELATIVE, what + ": relative error " + worst + " of " + scale);
    }
}
