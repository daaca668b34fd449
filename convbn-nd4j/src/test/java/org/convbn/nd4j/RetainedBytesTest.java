package org.convbn.nd4j;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.EnumMap;
import java.util.Map;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.convbn.core.Mode;
import org.convbn.core.Precision;
import org.convbn.core.RetainedBytes;
import org.convbn.core.TuneFold;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.PooledArena;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Exact accounting of what each mode keeps between forward and backward. */
class RetainedBytesTest {

    @ParameterizedTest
    @EnumSource(
            value = DataType.class,
            names = {"FLOAT", "DOUBLE"})
    void eachModeKeepsExactlyWhatTheModeTableSays(DataType type) {
        ConvBNConfig config = ConvBNConfig.of(ConvConfig.builder(6, 10)
                .kernel(3)
                .stride(2)
                .padding(1)
                .groups(2)
                .build());
        long[] inShape = {3, 6, 11, 9};
        INDArray x = Nd4j.rand(type, inShape);
        int width = type.width();
        Map<Mode, RetainedBytes> seen = new EnumMap<>(Mode.class);
        for (Mode mode : Mode.values()) {
            ConvBNBlock block = ConvBNBlock.of(config, ConvBNParameters.initialize(config, type, 1), mode);
            assertEquals(RetainedBytes.NONE, block.retainedBytes());
            INDArray z = block.forward(x);
            RetainedBytes held = block.retainedBytes();
            assertEquals(RetainedBytes.predict(config, mode, inShape, width), held, mode.toString());
            seen.put(mode, held);
            block.backward(Nd4j.ones(type, z.shape()));
            assertEquals(RetainedBytes.NONE, block.retainedBytes(), "backward releases what forward kept");
        }
        long outputMap = 3L * 10 * 6 * 5 * width;
        long input = 3L * 6 * 11 * 9 * width;
        assertEquals(input, seen.get(Mode.TUNE).activationBytes());
        assertEquals(
                seen.get(Mode.DEPLOY).activationBytes(), seen.get(Mode.TUNE).activationBytes());
        assertEquals(
                seen.get(Mode.TUNE).activationBytes() + outputMap,
                seen.get(Mode.EVAL).activationBytes());
        assertEquals(2L * 10 * width, seen.get(Mode.TUNE).weightBytes(), "b', s (W' recomputed, the default)");
        assertEquals(seen.get(Mode.EVAL).activationBytes(), seen.get(Mode.TRAIN).activationBytes());

        ConvBNConfig keeping = config.withTuneFold(TuneFold.KEEP);
        ConvBNBlock block = ConvBNBlock.of(keeping, ConvBNParameters.initialize(keeping, type, 1), Mode.TUNE);
        block.forward(x);
        assertEquals(
                new RetainedBytes(input, (10L * 3 * 3 * 3 + 2 * 10) * width), block.retainedBytes(), "W', b', s kept");
        assertEquals(RetainedBytes.predict(keeping, Mode.TUNE, inShape, width), block.retainedBytes());
    }

    @Test
    void inBfloat16EachModeKeepsItsFeatureMapsAtHalfWidthAndItsVectorsInFloat32() {
        ConvBNConfig config = ConvBNConfig.of(
                ConvConfig.builder(6, 10).kernel(3).stride(2).padding(1).build());
        long[] inShape = {3, 6, 11, 9};
        for (Mode mode : Mode.values()) {
            for (TuneFold fold : TuneFold.values()) {
                ConvBNConfig c = config.withTuneFold(fold);
                try (PooledArena arena = Arena.pooled();
                        Kernels kernels = Kernels.create(DataType.FLOAT, Precision.BF16_EMULATED, arena)) {
                    INDArray x = arena.allocate(DataType.BFLOAT16, inShape).assign(Nd4j.rand(DataType.FLOAT, inShape));
                    ConvBNBlock block =
                            ConvBNBlock.of(c, ConvBNParameters.initialize(c, DataType.FLOAT, 1), mode, kernels);
                    INDArray z = block.forward(x);
                    assertEquals(DataType.BFLOAT16, z.dataType(), mode + " output");
                    assertEquals(
                            RetainedBytes.predict(c, mode, inShape, Precision.BF16_BYTES, 4),
                            block.retainedBytes(),
                            mode + " " + fold);
                    BlockGradients g = block.backward(
                            arena.allocate(DataType.BFLOAT16, z.shape()).assign(1.0));
                    assertEquals(DataType.BFLOAT16, g.input().dataType(), mode + " dL/dx");
                    g.parameters().values().forEach(t -> assertEquals(DataType.FLOAT, t.dataType(), mode + " grads"));
                    assertEquals(RetainedBytes.NONE, block.retainedBytes());
                }
            }
        }
        long input = 3L * 6 * 11 * 9;
        long output = 3L * 10 * 6 * 5;
        assertEquals(
                new RetainedBytes(2 * input, 2 * 10 * 4),
                RetainedBytes.predict(config, Mode.TUNE, inShape, Precision.BF16_BYTES, 4));
        assertEquals(
                new RetainedBytes(2 * (input + output), 0),
                RetainedBytes.predict(config, Mode.EVAL, inShape, Precision.BF16_BYTES, 4));
    }

    @Test
    void resnetStageBlockAtBatchEight() {
        // [8, 64, 56, 56] float32, 3x3 pad 1, 64 -> 64: the numbers quoted in the docs.
        ConvBNConfig config = ConvBNConfig.of(
                ConvConfig.builder(64, 64).kernel(3).padding(1).bias(false).build());
        long[] shape = {8, 64, 56, 56};
        long map = 8L * 64 * 56 * 56 * 4;
        assertEquals(new RetainedBytes(2 * map, 2 * 64 * 4), RetainedBytes.predict(config, Mode.TRAIN, shape, 4));
        assertEquals(new RetainedBytes(2 * map, 0), RetainedBytes.predict(config, Mode.EVAL, shape, 4));
        assertEquals(new RetainedBytes(map, 0), RetainedBytes.predict(config, Mode.DEPLOY, shape, 4));
        assertEquals(new RetainedBytes(map, 2 * 64 * 4), RetainedBytes.predict(config, Mode.TUNE, shape, 4));
        assertEquals(
                new RetainedBytes(map, (64L * 64 * 9 + 2 * 64) * 4),
                RetainedBytes.predict(config.withTuneFold(TuneFold.KEEP), Mode.TUNE, shape, 4));
        // And the block really holds that in TUNE and EVAL.
        INDArray x = Nd4j.rand(DataType.FLOAT, shape);
        for (Mode mode : new Mode[] {Mode.EVAL, Mode.TUNE}) {
            ConvBNBlock block = ConvBNBlock.of(config, ConvBNParameters.initialize(config, DataType.FLOAT, 2), mode);
            block.forward(x);
            assertEquals(RetainedBytes.predict(config, mode, shape, 4), block.retainedBytes());
            block.clearSaved();
        }
    }
}
