package org.convbn.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.convbn.core.ConvBNConfig;
import org.convbn.core.ConvConfig;
import org.convbn.core.ConvTransposeConfig;
import org.convbn.core.LinearConfig;
import org.convbn.core.Mode;
import org.convbn.io.Safetensors;
import org.convbn.nd4j.ConvBNBlock;
import org.convbn.nd4j.NonFiniteTensorException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** torchvision-named state_dicts through the project's own writer and reader, into networks and blocks. */
class StateDictTest {

    @Test
    void resnet18StateDictLoadsIntoAFreshNetworkWithEveryTensorInPlace(@TempDir Path dir) throws IOException {
        ResNet source = ResNet.builder(ResNet.Variant.RESNET18)
                .classes(10)
                .dataType(DataType.FLOAT)
                .seed(1)
                .mode(Mode.TRAIN)
                .build();
        Map<String, INDArray> state = new LinkedHashMap<>(StateDict.of(source));
        state.values().stream().filter(a -> a.length() < 1000).forEach(a -> a.addi(Nd4j.rand(a.dataType(), a.shape())));
        state.put("layer1.0.bn1.num_batches_tracked", Nd4j.scalar(5.0f)); // PyTorch writes these; they are ignored
        assertEquals(20 * 4 + 20 + 2, StateDict.of(source).size(), "W, gamma, beta, mean, var per block; fc");
        assertTrue(state.containsKey("layer2.0.downsample.1.running_var"));
        Path file = dir.resolve("resnet18.safetensors");
        Safetensors.write(file, state, Map.of("format", "pt"));

        ResNet target = ResNet.builder(ResNet.Variant.RESNET18)
                .classes(10)
                .dataType(DataType.FLOAT)
                .seed(2)
                .mode(Mode.TUNE)
                .build();
        StateDict.load(target, Safetensors.read(file).tensors());
        Map<String, INDArray> loaded = StateDict.of(target);
        for (Map.Entry<String, INDArray> e : StateDict.of(source).entrySet()) {
            assertArrayEquals(
                    e.getValue().dup().data().asFloat(),
                    loaded.get(e.getKey()).dup().data().asFloat(),
                    e.getKey());
        }
    }

    /** A NaN in a block's tensor is reported under the network's name for it, not the block's ("conv.weight"). */
    @Test
    void aNonFiniteTensorIsNamedAsTheNetworkNamesIt() {
        try (ResNet net = ResNet.builder(ResNet.Variant.RESNET18)
                .classes(3)
                .dataType(DataType.DOUBLE)
                .seed(1)
                .mode(Mode.TUNE)
                .build()) {
            StateDict.of(net).get("layer3.0.conv2.weight").putScalar(17, Double.NaN);
            NonFiniteTensorException e = assertThrows(NonFiniteTensorException.class, () -> net.setMode(Mode.DEPLOY));
            assertEquals(
                    "layer3.0.conv2.weight: expected finite values, got NaN at flat index 17 of shape "
                            + "[256, 256, 3, 3]",
                    e.getMessage());
            assertTrue(
                    net.blocks().stream().allMatch(b -> b.block().mode() == Mode.TUNE),
                    "all or none: the blocks switched before the failure are back in TUNE");
            StateDict.of(net).get("layer3.0.conv2.weight").putScalar(17, 0.0);
            StateDict.of(net).get("layer2.1.bn1.weight").putScalar(3, Double.POSITIVE_INFINITY);
            e = assertThrows(
                    NonFiniteTensorException.class, () -> net.forward(Nd4j.rand(DataType.DOUBLE, 1, 3, 32, 32)));
            assertEquals(
                    "layer2.1.bn1.weight: expected finite values, got Infinity at flat index 3 of shape [128]",
                    e.getMessage());
        }
    }

    @Test
    void resnet50HasTorchvisionsStateDictNames() {
        Map<String, INDArray> state = StateDict.of(ResNet.builder(ResNet.Variant.RESNET50)
                .classes(1000)
                .dataType(DataType.FLOAT)
                .seed(1)
                .mode(Mode.EVAL)
                .build());
        // torchvision's resnet50 state_dict has 320 entries: these 267 and 53 num_batches_tracked.
        assertEquals(53 * 5 + 2, state.size());
        for (String name : new String[] {
            "conv1.weight",
            "bn1.running_var",
            "layer1.0.downsample.0.weight",
            "layer1.0.downsample.1.bias",
            "layer3.5.conv2.weight",
            "layer4.2.bn3.running_mean",
            "fc.bias"
        }) {
            assertTrue(state.containsKey(name), name);
        }
        assertArrayEquals(
                new long[] {2048, 512, 1, 1}, state.get("layer4.0.conv3.weight").shape());
        assertArrayEquals(new long[] {1000, 2048}, state.get("fc.weight").shape());
    }

    @Test
    void misfitsAreListedAndNothingIsCopied() {
        ResNet net = ResNet.builder(ResNet.Variant.RESNET18)
                .classes(10)
                .dataType(DataType.FLOAT)
                .seed(1)
                .mode(Mode.EVAL)
                .build();
        Map<String, INDArray> state = new LinkedHashMap<>(StateDict.of(ResNet.builder(ResNet.Variant.RESNET18)
                .classes(10)
                .dataType(DataType.FLOAT)
                .seed(3)
                .mode(Mode.EVAL)
                .build()));
        state.remove("layer3.1.bn2.running_mean");
        state.put("layer5.0.conv1.weight", Nd4j.zeros(DataType.FLOAT, 1));
        state.put("fc.weight", Nd4j.zeros(DataType.FLOAT, 11, 512));
        INDArray before = StateDict.of(net).get("conv1.weight").dup();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> StateDict.load(net, state));
        assertTrue(e.getMessage().contains("missing [layer3.1.bn2.running_mean]"), e.getMessage());
        assertTrue(e.getMessage().contains("unexpected [layer5.0.conv1.weight]"), e.getMessage());
        assertTrue(e.getMessage().contains("fc.weight (expected [10, 512], got [11, 512])"), e.getMessage());
        assertEquals(before, StateDict.of(net).get("conv1.weight"), "nothing copied");
    }

    @Test
    void blockUnderAPrefixAndDeployRefusal() {
        ConvBNConfig config =
                ConvBNConfig.of(ConvConfig.builder(3, 4).kernel(3).padding(1).build());
        ConvBNBlock a = ConvBNBlock.initialized(config, DataType.DOUBLE, 1);
        ConvBNBlock b = ConvBNBlock.initialized(config, DataType.DOUBLE, 2);
        Map<String, INDArray> state = new LinkedHashMap<>(StateDict.of(a, "features.3."));
        assertEquals(
                List.of(
                        "features.3.conv.weight",
                        "features.3.conv.bias",
                        "features.3.bn.weight",
                        "features.3.bn.bias",
                        "features.3.bn.running_mean",
                        "features.3.bn.running_var"),
                List.copyOf(state.keySet()));
        state.put("classifier.weight", Nd4j.zeros(1)); // outside the prefix: ignored
        StateDict.load(b, "features.3.", state);
        assertEquals(a.unfoldedParameters().weight(), b.unfoldedParameters().weight());
        b.setMode(Mode.DEPLOY);
        assertThrows(IllegalStateException.class, () -> StateDict.of(b, ""));
    }

    /**
     * PyTorch's names of a {@code nn.Sequential(OrderedDict(linear=nn.Linear(5, 6), bn=nn.BatchNorm1d(6)))} under
     * "classifier." and of a transposed conv pair (weight in the [in, out/groups, kH, kW] layout).
     */
    @Test
    void linearAndTransposedBlocksUseTheirModulesNames() {
        ConvBNConfig linear = ConvBNConfig.of(new LinearConfig(5, 6, true));
        ConvBNBlock a = ConvBNBlock.initialized(linear, DataType.DOUBLE, 1);
        ConvBNBlock b = ConvBNBlock.initialized(linear, DataType.DOUBLE, 2);
        Map<String, INDArray> state = StateDict.of(a, "classifier.");
        assertEquals(
                List.of(
                        "classifier.linear.weight",
                        "classifier.linear.bias",
                        "classifier.bn.weight",
                        "classifier.bn.bias",
                        "classifier.bn.running_mean",
                        "classifier.bn.running_var"),
                List.copyOf(state.keySet()));
        assertArrayEquals(
                new long[] {6, 5}, state.get("classifier.linear.weight").shape());
        StateDict.load(b, "classifier.", state);
        assertEquals(a.unfoldedParameters().weight(), b.unfoldedParameters().weight());
        assertEquals(a.unfoldedParameters().bias(), b.unfoldedParameters().bias());

        ConvBNConfig transposed = ConvBNConfig.of(ConvTransposeConfig.builder(4, 6)
                .kernel(2)
                .stride(2)
                .groups(2)
                .bias(false)
                .build());
        Map<String, INDArray> up = StateDict.of(ConvBNBlock.initialized(transposed, DataType.FLOAT, 3), "up.");
        assertEquals(
                List.of("up.conv.weight", "up.bn.weight", "up.bn.bias", "up.bn.running_mean", "up.bn.running_var"),
                List.copyOf(up.keySet()));
        assertArrayEquals(new long[] {4, 3, 2, 2}, up.get("up.conv.weight").shape());
    }
}
