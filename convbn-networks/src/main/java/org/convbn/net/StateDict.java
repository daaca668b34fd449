package org.convbn.net;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import net.jcip.annotations.ThreadSafe;
import org.convbn.core.Mode;
import org.convbn.nd4j.ConvBNBlock;
import org.convbn.nd4j.FoldedParameters;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * PyTorch state_dict naming for blocks and networks: a block under prefix p has {@code p + "conv.weight"},
 * {@code conv.bias} (when the conv has one; {@code linear.weight}, {@code linear.bias} for a Linear + BatchNorm1d
 * block, and a transposed conv's weight in PyTorch's {@code [in, out/groups, kH, kW]} layout), {@code bn.weight}, {@code bn.bias} (when affine),
 * {@code bn.running_mean}, {@code bn.running_var}; a {@link ResNet} uses torchvision's names ({@code conv1},
 * {@code bn1}, {@code layer1.0.conv1}, {@code layer1.0.downsample.0}/{@code .1}, {@code fc}, ...).
 * {@code num_batches_tracked} entries are ignored. Loading copies values into the live arrays (casting to their
 * data type) only after every name and shape checked out.
 */
@ThreadSafe
public final class StateDict {
    private static final String IGNORED_SUFFIX = "num_batches_tracked";

    private StateDict() {}

    /**
     * @return the network's tensors by torchvision name (live arrays), in module order
     * @throws IllegalStateException in DEPLOY, where W, b, gamma, beta are not held
     */
    public static Map<String, INDArray> of(Network net) {
        Map<String, INDArray> m = new LinkedHashMap<>();
        for (NamedBlock b : net.blocks()) {
            putUnfolded(m, b);
        }
        m.putAll(net.layerParameters());
        return m;
    }

    /**
     * @param prefix e.g. "" or "backbone.0." (the block's tensors are {@code prefix + "conv.weight"}, ..., or
     *               {@code prefix + "linear.weight"}, ... for a linear block)
     * @return the block's tensors by name (live arrays)
     * @throws IllegalStateException in DEPLOY
     */
    public static Map<String, INDArray> of(ConvBNBlock block, String prefix) {
        Map<String, INDArray> m = new LinkedHashMap<>();
        putUnfolded(m, new NamedBlock(prefix + block.config().producer().prefix(), prefix + "bn", block));
        return m;
    }

    /**
     * Copies a torchvision state_dict into the network.
     *
     * @param net modified: every tensor assigned
     * @param tensors by name, not modified
     * @throws IllegalArgumentException listing every missing, unexpected and mis-shaped name; nothing is copied then
     */
    public static void load(Network net, Map<String, INDArray> tensors) {
        assign(of(net), tensors);
    }

    /**
     * Copies a block's tensors from a state_dict.
     *
     * @param block modified
     * @param prefix the block's name prefix in {@code tensors}
     * @param tensors by name, not modified; names outside the prefix are ignored
     * @throws IllegalArgumentException listing every missing, unexpected (under the prefix) and mis-shaped name
     */
    public static void load(ConvBNBlock block, String prefix, Map<String, INDArray> tensors) {
        Map<String, INDArray> under = new LinkedHashMap<>();
        tensors.forEach((k, v) -> {
            if (k.startsWith(prefix)) {
                under.put(k, v);
            }
        });
        assign(of(block, prefix), under);
    }

    /**
     * The network as it runs in DEPLOY, in torchvision names: each block's folded conv ({@code conv1.weight} = W',
     * {@code conv1.bias} = b') and no BN entries, then {@code fc}; what a PyTorch model with BN fused into its convs
     * (torch.fx's or torch.ao's fuse) loads. In DEPLOY the live folded tensors, elsewhere a fold computed now.
     *
     * @return new or live arrays by name (do not modify them)
     */
    public static Map<String, INDArray> folded(Network net) {
        Map<String, INDArray> m = new LinkedHashMap<>();
        for (NamedBlock b : net.blocks()) {
            FoldedParameters f = b.block().foldedParameters();
            m.put(b.convName() + ".weight", f.weight());
            m.put(b.convName() + ".bias", f.bias());
        }
        m.putAll(net.layerParameters());
        return m;
    }

    /**
     * Copies tensors into live arrays by name, strictly: every target must be given with its shape and nothing else
     * may be given ({@code num_batches_tracked} entries aside).
     *
     * @param targets the live arrays by name, modified (each assigned, cast to its data type)
     * @param tensors by name, not modified
     * @throws IllegalArgumentException listing every missing, unexpected and mis-shaped name; nothing is copied then
     */
    public static void assign(Map<String, INDArray> targets, Map<String, INDArray> tensors) {
        List<String> missing = new ArrayList<>();
        List<String> unexpected = new ArrayList<>();
        List<String> misShaped = new ArrayList<>();
        for (Map.Entry<String, INDArray> t : targets.entrySet()) {
            INDArray given = tensors.get(t.getKey());
            if (given == null) {
                missing.add(t.getKey());
            } else if (!Arrays.equals(given.shape(), t.getValue().shape())) {
                misShaped.add(t.getKey() + " (expected "
                        + Arrays.toString(t.getValue().shape()) + ", got " + Arrays.toString(given.shape()) + ")");
            }
        }
        for (String name : tensors.keySet()) {
            if (!targets.containsKey(name) && !name.endsWith(IGNORED_SUFFIX)) {
                unexpected.add(name);
            }
        }
        if (!missing.isEmpty() || !unexpected.isEmpty() || !misShaped.isEmpty()) {
            throw new IllegalArgumentException("state_dict: does not fit: missing " + missing + "; unexpected "
                    + unexpected + "; mis-shaped " + misShaped);
        }
        targets.forEach((name, target) -> target.assign(tensors.get(name).castTo(target.dataType())));
    }

    /** The one place block tensors get PyTorch names: {@link NamedBlock#qualify}. */
    private static void putUnfolded(Map<String, INDArray> into, NamedBlock b) {
        requireUnfolded(b.block(), b.convName());
        b.block()
                .unfoldedParameters()
                .trainable(b.block().config().producer())
                .forEach((k, v) -> into.put(b.qualify(k), v));
        b.block().unfoldedParameters().buffers().forEach((k, v) -> into.put(b.qualify(k), v));
    }

    private static void requireUnfolded(ConvBNBlock block, String name) {
        if (block.mode() == Mode.DEPLOY) {
            throw new IllegalStateException("block " + name + ": expected a mode other than DEPLOY to read or write "
                    + "W, b, gamma, beta and the running statistics, got DEPLOY");
        }
    }
}
