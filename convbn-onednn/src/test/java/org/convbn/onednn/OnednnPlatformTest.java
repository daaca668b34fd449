package org.convbn.onednn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.bytedeco.dnnl.global.dnnl;
import org.convbn.core.Mode;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.Layout;
import org.convbn.net.ResNet;
import org.convbn.onednn.OnednnPlatform.IsaCap;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** The ISA and layout choice, their switches, and the kernels' primitive cache and its end. */
class OnednnPlatformTest {

    @Test
    void theLayoutFollowsTheInstructionSet() {
        assertEquals(Layout.BLOCKED16, OnednnPlatform.layoutFor(dnnl.dnnl_cpu_isa_avx512_core));
        assertEquals(Layout.BLOCKED16, OnednnPlatform.layoutFor(dnnl.dnnl_cpu_isa_avx512_core_bf16));
        assertEquals(Layout.BLOCKED16, OnednnPlatform.layoutFor(dnnl.dnnl_cpu_isa_avx512_core_amx));
        assertEquals(Layout.BLOCKED8, OnednnPlatform.layoutFor(dnnl.dnnl_cpu_isa_avx2));
        assertEquals(Layout.BLOCKED8, OnednnPlatform.layoutFor(dnnl.dnnl_cpu_isa_avx2_vnni));
        assertEquals(Layout.NCHW, OnednnPlatform.layoutFor(dnnl.dnnl_cpu_isa_avx));
        assertEquals(Layout.NCHW, OnednnPlatform.layoutFor(dnnl.dnnl_cpu_isa_sse41));
        assertEquals("avx512_core_bf16", OnednnPlatform.isaName(dnnl.dnnl_cpu_isa_avx512_core_bf16));
        assertEquals("avx2", OnednnPlatform.isaName(dnnl.dnnl_cpu_isa_avx2));
    }

    @Test
    void thisProcessReportsWhatOnednnRunsOn() {
        OnednnPlatform p = OnednnPlatform.current();
        assertTrue(p.version().matches("\\d+\\.\\d+\\.\\d+"), p.version());
        assertTrue(p.describe().contains(p.isa()), p.describe());
        assertEquals(p.nativeLayout(), new OnednnKernels(Arena.direct()).preferredLayout(64));
    }

    /** The line logged when the first kernels of a type are made: oneDNN's version and ISA for float32. */
    @Test
    void theKernelChoiceNamesOnednnItsIsaAndNd4j() {
        String line = Kernels.describeChoice(DataType.FLOAT);
        OnednnPlatform p = OnednnPlatform.current();
        assertTrue(
                line.startsWith("FLOAT kernels: onednn (oneDNN " + p.version() + ", isa " + p.isa() + ", layout "
                        + p.nativeLayout() + ") on ND4J "),
                line);
        assertFalse(line.contains("not used"), line);
        String doubles = Kernels.describeChoice(DataType.DOUBLE);
        assertTrue(doubles.startsWith("DOUBLE kernels: nd4j on ND4J "), doubles);
        assertFalse(doubles.contains("not used"), "float32-only oneDNN is no fall-back for float64: " + doubles);
    }

    @Test
    void theLayoutPropertyForcesTheLayoutOfNewKernelsAndNamesBadValues() {
        try {
            System.setProperty(OnednnPlatform.LAYOUT_PROPERTY, "blocked16");
            OnednnKernels k = new OnednnKernels(Arena.direct());
            assertEquals(Layout.BLOCKED16, k.preferredLayout(32));
            assertEquals(Layout.BLOCKED8, k.preferredLayout(24), "the largest block that divides 24");
            assertEquals(Layout.NCHW, k.preferredLayout(3));
            assertTrue(k.describe().contains("BLOCKED16"), k.describe());
            System.setProperty(OnednnPlatform.LAYOUT_PROPERTY, "nchw");
            assertEquals(Layout.NCHW, new OnednnKernels(Arena.direct()).preferredLayout(32));
            System.setProperty(OnednnPlatform.LAYOUT_PROPERTY, "blocked12");
            IllegalArgumentException e =
                    assertThrows(IllegalArgumentException.class, () -> new OnednnKernels(Arena.direct()));
            assertTrue(
                    e.getMessage().contains(OnednnPlatform.LAYOUT_PROPERTY)
                            && e.getMessage().contains("blocked12"),
                    e.getMessage());
        } finally {
            System.clearProperty(OnednnPlatform.LAYOUT_PROPERTY);
        }
    }

    @Test
    void isaCapsParseTheirNamesAndRefuseOthers() {
        assertEquals(IsaCap.AVX2, IsaCap.parse("--isa", "AVX2"));
        assertEquals(IsaCap.AVX512, IsaCap.parse("--isa", "avx512"));
        assertEquals(IsaCap.NATIVE, IsaCap.parse("--isa", " native "));
        assertEquals("AVX2", IsaCap.AVX2.environmentValue());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> IsaCap.parse("--isa", "sse"));
        assertTrue(e.getMessage().startsWith("--isa: expected one of avx2, avx512, native"), e.getMessage());
    }

    @Test
    void theCacheFreesTheLeastRecentlyUsedPrimitiveBeyondItsCapacity() {
        OnednnContext ctx = new OnednnContext(Arena.direct(), Layout.BLOCKED8, PrimitiveCache.MIN_CAPACITY);
        long[][] shapes = {{1, 8, 2, 2}, {1, 16, 2, 2}, {1, 24, 2, 2}, {1, 32, 2, 2}};
        for (long[] shape : shapes) {
            INDArray x = Nd4j.rand(DataType.FLOAT, shape);
            INDArray back = ctx.relayout(ctx.relayout(x, Layout.BLOCKED8), Layout.NCHW);
            assertEquals(x, back, "a reorder there and back");
        }
        // eight reorders made (to and from each shape), four kept: the last two shapes'
        assertEquals(null, ctx.cached(reorder(shapes[0], Layout.NCHW, Layout.BLOCKED8)), "freed");
        assertEquals(null, ctx.cached(reorder(shapes[1], Layout.BLOCKED8, Layout.NCHW)), "freed");
        assertTrue(ctx.cached(reorder(shapes[2], Layout.NCHW, Layout.BLOCKED8)) != null);
        assertTrue(ctx.cached(reorder(shapes[3], Layout.BLOCKED8, Layout.NCHW)) != null);
        assertThrows(IllegalArgumentException.class, () -> new PrimitiveCache(PrimitiveCache.MIN_CAPACITY - 1));
        INDArray x = Nd4j.rand(DataType.FLOAT, shapes[0]);
        assertEquals(x, ctx.relayout(ctx.relayout(x, Layout.BLOCKED8), Layout.NCHW), "a freed primitive is made again");
        ctx.close();
    }

    private static OnednnContext.Key reorder(long[] shape, Layout from, Layout to) {
        return new OnednnContext.Key("reorder", OnednnContext.dims(shape), from, to);
    }

    @Test
    void closingANetworkClosesItsKernels() {
        OnednnKernels k;
        try (ResNet net = ResNet.builder(ResNet.Variant.RESNET18)
                .classes(10)
                .dataType(DataType.FLOAT)
                .seed(5)
                .mode(Mode.TUNE)
                .build()) {
            k = (OnednnKernels) net.kernels();
            net.arena().release(net.forward(Nd4j.rand(DataType.FLOAT, 1, 3, 32, 32)));
            assertFalse(k.implementations().isEmpty(), "the step ran oneDNN primitives");
        }
        assertThrows(
                IllegalStateException.class,
                () -> k.relayout(Nd4j.rand(DataType.FLOAT, 1, 8, 2, 2), Layout.BLOCKED8),
                "its primitives are freed with the network");
    }

    @Test
    void closedKernelsRefuseWork() {
        OnednnKernels k = new OnednnKernels(Arena.direct());
        k.relayout(Nd4j.rand(DataType.FLOAT, 1, 8, 2, 2), Layout.BLOCKED8);
        k.close();
        k.close(); // idempotent
        IllegalStateException e = assertThrows(
                IllegalStateException.class, () -> k.relayout(Nd4j.rand(DataType.FLOAT, 1, 8, 2, 2), Layout.BLOCKED8));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
    }
}
