package org.convbn.transfer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import net.jcip.annotations.ThreadSafe;
import org.convbn.core.Mode;
import org.convbn.core.Precision;
import org.convbn.io.Safetensors;
import org.convbn.net.Network;
import org.convbn.net.StateDict;
import org.convbn.net.Zoo;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A network of the {@link Zoo} from torchvision weights in a safetensors file (what {@code safetensors.torch.save_file(
 * model.state_dict(), path)} writes for {@code torchvision.models.<name>()}), loaded strictly: every missing,
 * unexpected and mis-shaped name is listed and nothing is loaded then ({@code num_batches_tracked} counters are
 * ignored). The classifier's size is read from the file.
 */
@ThreadSafe
public final class Pretrained {
    private Pretrained() {}

    /**
     * @param model a {@link Zoo} name, e.g. {@code "resnet50"}, {@code "mobilenet_v2"}
     * @param weights the safetensors file, not modified
     * @param type FLOAT or DOUBLE (the file's tensors are cast)
     * @param mode the mode the network is put in after loading
     * @return the network with the file's weights and classifier (dropout and stochastic depth off, as
     *         {@link Zoo#create}), the caller's to close
     * @throws IllegalArgumentException for an unknown model, or weights that do not fit it (every problem listed,
     *                                  the file named)
     * @throws IOException if the file cannot be read or is not valid safetensors (named)
     */
    public static Network load(String model, Path weights, DataType type, Mode mode) throws IOException {
        return load(model, weights, type, Precision.FULL, mode);
    }

    /**
     * As {@link #load(String, Path, DataType, Mode)} with feature maps stored as {@code precision} says.
     *
     * @throws UnsupportedOperationException for a precision no kernels here compute in
     */
    public static Network load(String model, Path weights, DataType type, Precision precision, Mode mode)
            throws IOException {
        Network net = Zoo.create(model, 1, type, precision, 0); // an unknown name is refused, the known ones listed
        try {
            Map<String, INDArray> tensors = Safetensors.read(weights).tensors();
            String classifier =
                    net.classifier().parameters().keySet().iterator().next(); // its weight [classes, in]
            INDArray w = tensors.get(classifier);
            if (w != null && w.rank() == 2 && w.size(0) > 0) {
                net.replaceHead((int) w.size(0), 0);
            }
            StateDict.load(net, tensors);
        } catch (IllegalArgumentException e) {
            net.close();
            throw new IllegalArgumentException(
                    "weights " + weights + ": do not fit " + model + ": " + e.getMessage(), e);
        } catch (IOException | RuntimeException e) {
            net.close();
            throw e;
        }
        net.setMode(mode);
        return net;
    }
}
