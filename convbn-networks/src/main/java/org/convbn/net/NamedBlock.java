package org.convbn.net;

import net.jcip.annotations.NotThreadSafe;

import java.util.LinkedHashMap;
import java.util.Map;

import org.convbn.core.ParameterNames;
import org.convbn.core.ProducerConfig;
import org.convbn.nd4j.BlockGradients;
import org.convbn.nd4j.ConvBNBlock;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A block placed in a network under PyTorch module names, e.g. conv {@code layer1.0.conv1} and BN
 * {@code layer1.0.bn1}: its {@code conv.weight} is then {@code layer1.0.conv1.weight}, its {@code bn.bias}
 * {@code layer1.0.bn1.bias}, and DEPLOY's {@code folded.weight} {@code layer1.0.conv1.folded.weight}.
 *
 * @param convName the module name of the layer BN follows (a conv, transposed conv or linear layer)
 * @param bnName the BN's module name
 * @param block the block
 */
@NotThreadSafe
public record NamedBlock(String convName, String bnName, ConvBNBlock block) {

    /** @return the network-level name of one of the block's tensor names */
    public String qualify(String blockName) {
        ProducerConfig producer = block.config().producer();
        if (blockName.equals(producer.weightName())) {
            return convName + ".weight";
        }
        if (blockName.equals(producer.biasName())) {
            return convName + ".bias";
        }
        return switch (blockName) {
            case ParameterNames.BN_WEIGHT -> bnName + ".weight";
            case ParameterNames.BN_BIAS -> bnName + ".bias";
            case ParameterNames.BN_RUNNING_MEAN -> bnName + ".running_mean";
            case ParameterNames.BN_RUNNING_VAR -> bnName + ".running_var";
            default -> convName + "." + blockName;
        };
    }

    /** @return the block's trainable tensors under network names; live arrays */
    public Map<String, INDArray> parameters() {
        Map<String, INDArray> m = new LinkedHashMap<>();
        block.parameters().forEach((k, v) -> m.put(qualify(k), v));
        return m;
    }

    /**
     * Runs the block's backward and hands its parameter gradients to the sink under network names.
     *
     * @param g dL/d(block output), not modified
     * @param inputGradient whether dL/d(block input) is needed
     * @param sink receives the gradients (and owns them)
     * @return dL/d(block input), or null when not asked for
     */
    public INDArray backward(INDArray g, boolean inputGradient, GradientSink sink) {
        Map<String, INDArray> parameters = block.parameters();
        BlockGradients grads = block.backward(g, inputGradient);
        grads.parameters().forEach((k, v) -> sink.accept(qualify(k), parameters.get(k), v));
        return grads.input();
    }
}
