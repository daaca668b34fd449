package org.convbn.net;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import net.jcip.annotations.NotThreadSafe;
import org.convbn.core.Mode;
import org.convbn.core.ParameterNames;
import org.convbn.core.ProducerConfig;
import org.convbn.nd4j.BlockGradients;
import org.convbn.nd4j.ConvBNBlock;
import org.convbn.nd4j.NonFiniteTensorException;
import org.convbn.nd4j.kernel.Layout;
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

    /**
     * {@link ConvBNBlock#setMode}, with a non-finite tensor named as the network names it.
     *
     * @param mode the target mode
     * @throws NonFiniteTensorException naming e.g. {@code layer3.0.conv2.weight}
     */
    public void setMode(Mode mode) {
        try {
            block.setMode(mode);
        } catch (NonFiniteTensorException e) {
            throw e.named(qualify(e.tensor()));
        }
    }

    /**
     * Switches blocks all or none: when one fails (a non-finite tensor, a fold that cannot be inverted), those
     * already switched go back to the mode they had (a fold undone is equal to within the fold's rounding) and the
     * failure is thrown.
     *
     * @param blocks the blocks, switched in this order
     * @param target each block's mode
     * @throws RuntimeException the first block's failure (with any failure of switching back suppressed in it)
     */
    public static void setModes(List<NamedBlock> blocks, Function<NamedBlock, Mode> target) {
        Map<NamedBlock, Mode> before = new LinkedHashMap<>();
        for (NamedBlock b : blocks) {
            Mode was = b.block().mode();
            try {
                b.setMode(target.apply(b));
            } catch (RuntimeException e) {
                before.forEach((done, mode) -> {
                    try {
                        done.block().setMode(mode);
                    } catch (RuntimeException back) {
                        e.addSuppressed(back);
                    }
                });
                throw e;
            }
            before.put(b, was);
        }
    }

    /**
     * {@link ConvBNBlock#forward(INDArray, Layout)}, with a non-finite tensor named as the network names it.
     *
     * @param x the input, not modified
     * @param out the output's layout
     * @param replay whether to replay the last batch's statistics ({@link ConvBNBlock#forwardReplay})
     * @return the output, the caller's
     * @throws NonFiniteTensorException naming e.g. {@code layer3.0.bn2.running_var}
     */
    public INDArray forward(INDArray x, Layout out, boolean replay) {
        try {
            return replay ? block.forwardReplay(x, out) : block.forward(x, out);
        } catch (NonFiniteTensorException e) {
            throw e.named(qualify(e.tensor()));
        }
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
