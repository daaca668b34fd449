package org.convbn.transfer;

import net.jcip.annotations.ThreadSafe;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

import org.convbn.core.Mode;
import org.convbn.io.Safetensors;
import org.convbn.net.StateDict;
import org.convbn.net.ResNet;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A ResNet from torchvision weights in a safetensors file (what {@code safetensors.torch.save_file(
 * model.state_dict(), path)} writes for {@code torchvision.models.resnet18/50}), loaded strictly: every missing,
 * unexpected and mis-shaped name is listed and nothing is loaded then ({@code num_batches_tracked} counters are
 * ignored). The head's size is read from {@code fc.weight}.
 */
@ThreadSafe
public final class Pretrained {
    private Pretrained() {
    }

    /**
     * @param depth the architecture the weights are for
     * @param weights the safetensors file, not modified
     * @param type FLOAT or DOUBLE (the file's tensors are cast)
     * @param mode the mode the network is put in after loading
     * @return the network with the file's weights and head, the caller's to close
     * @throws IllegalArgumentException if the weights do not fit the architecture (every problem listed)
     * @throws IOException if the file cannot be read or is not valid safetensors (named)
     */
    public static ResNet load(ResNet.Depth depth, Path weights, DataType type, Mode mode) throws IOException {
        Map<String, INDArray> tensors = Safetensors.read(weights).tensors();
        INDArray fc = tensors.get("fc.weight");
        int classes = fc != null && fc.rank() == 2 && fc.size(0) > 0 ? (int) fc.size(0) : 1000;
        ResNet net = ResNet.builder(depth).classes(classes).dataType(type).seed(0).mode(Mode.EVAL).build();
        try {
            StateDict.load(net, tensors);
        } catch (IllegalArgumentException e) {
            net.close();
            throw new IllegalArgumentException("weights " + weights + ": do not fit " + depth.name().toLowerCase(
                    java.util.Locale.ROOT) + ": " + e.getMessage(), e);
        }
        net.setMode(mode);
        return net;
    }
}
