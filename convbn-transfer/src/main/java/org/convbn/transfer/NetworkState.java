package org.convbn.transfer;

import java.util.LinkedHashMap;
import java.util.Map;
import net.jcip.annotations.ThreadSafe;
import org.convbn.core.Mode;
import org.convbn.core.ParameterNames;
import org.convbn.nd4j.BatchNormState;
import org.convbn.net.NamedBlock;
import org.convbn.net.Network;
import org.convbn.net.StateDict;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Everything a network needs to continue training where it stopped, by name, in whatever mode it is in: in TRAIN,
 * EVAL and TUNE its torchvision state_dict ({@link StateDict#of(Network)}); in DEPLOY the parameters it trains there,
 * W' and b' ({@code conv1.folded.weight}, {@code conv1.folded.bias}, ...), with the BN tensors kept to unfold with
 * under their torchvision names, and the tensors of the layers that are not ConvBN blocks (classifier,
 * squeeze-and-excitation). Exact: a network restored from it computes what the original
 * would have, bit for bit.
 */
@ThreadSafe
public final class NetworkState {
    private NetworkState() {}

    /**
     * @param net read, not modified
     * @return the live tensors by name (copy them to keep them)
     * @throws IllegalStateException for a DEPLOY block made without its BN tensors
     */
    public static Map<String, INDArray> of(Network net) {
        if (net.mode() != Mode.DEPLOY) {
            return StateDict.of(net);
        }
        Map<String, INDArray> m = new LinkedHashMap<>();
        for (NamedBlock b : net.blocks()) {
            b.parameters().forEach(m::put);
            putBatchNorm(
                    m,
                    b,
                    b.block()
                            .batchNormState()
                            .orElseThrow(() -> new IllegalStateException("block " + b.convName()
                                    + ": a DEPLOY block without its BN tensors cannot be checkpointed")));
        }
        m.putAll(net.layerParameters());
        return m;
    }

    /**
     * Restores what {@link #of} gave, strictly: every name, no other, every shape.
     *
     * @param net modified; must be in the mode the state was taken in (blocks made as the original's)
     * @param state by name, not modified
     * @throws IllegalArgumentException listing every missing, unexpected and mis-shaped name; nothing is copied then
     */
    public static void load(Network net, Map<String, INDArray> state) {
        if (net.mode() != Mode.DEPLOY) {
            StateDict.load(net, state);
            return;
        }
        // DEPLOY's parameters are W' and b', folded from W with the kept BN tensors. Unfold to EVAL, check and copy
        // everything (W', b' into temporaries), fold again with the restored BN tensors, then overwrite W' and b'.
        net.setMode(Mode.EVAL);
        Map<String, INDArray> targets = new LinkedHashMap<>();
        Map<String, INDArray> folded = new LinkedHashMap<>();
        for (NamedBlock b : net.blocks()) {
            INDArray w = b.block().unfoldedParameters().weight();
            String fw = b.qualify(ParameterNames.FOLDED_WEIGHT);
            String fb = b.qualify(ParameterNames.FOLDED_BIAS);
            folded.put(fw, Nd4j.create(w.dataType(), w.shape()));
            folded.put(fb, Nd4j.create(w.dataType(), w.size(0)));
            targets.put(fw, folded.get(fw));
            targets.put(fb, folded.get(fb));
            putBatchNorm(targets, b, b.block().batchNormState().orElseThrow());
        }
        targets.putAll(net.layerParameters());
        try {
            StateDict.assign(targets, state);
        } finally {
            net.setMode(Mode.DEPLOY);
        }
        Map<String, INDArray> live = new LinkedHashMap<>();
        for (NamedBlock b : net.blocks()) {
            live.putAll(b.parameters());
        }
        folded.forEach((name, value) -> live.get(name).assign(value));
    }

    private static void putBatchNorm(Map<String, INDArray> into, NamedBlock b, BatchNormState bn) {
        if (bn.gamma() != null) {
            into.put(b.qualify(ParameterNames.BN_WEIGHT), bn.gamma());
            into.put(b.qualify(ParameterNames.BN_BIAS), bn.beta());
        }
        into.put(b.qualify(ParameterNames.BN_RUNNING_MEAN), bn.runningMean());
        into.put(b.qualify(ParameterNames.BN_RUNNING_VAR), bn.runningVar());
    }
}
