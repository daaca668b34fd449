package org.convbn.io;

import java.util.Arrays;

/**
 * The safetensors element types this library reads: F64 and F32 as they are, F16 and BF16 widened to F32, I64 as
 * LONG (PyTorch's BN {@code num_batches_tracked} counters in a torchvision state_dict).
 */
public enum SafetensorsDtype {
    F64(8),
    F32(4),
    F16(2),
    BF16(2),
    I64(8);

    private final int bytes;

    SafetensorsDtype(int bytes) {
        this.bytes = bytes;
    }

    /** @return bytes per element */
    public int bytes() {
        return bytes;
    }

    /**
     * @param name the header's dtype string
     * @throws SafetensorsException for any other type (I32, BOOL, ...: valid safetensors, not ours)
     */
    static SafetensorsDtype parse(String tensor, String name) throws SafetensorsException {
        for (SafetensorsDtype d : values()) {
            if (d.name().equals(name)) {
                return d;
            }
        }
        throw new SafetensorsException(
                "tensor '" + tensor + "': dtype expected one of " + Arrays.toString(values()) + ", got '" + name + "'");
    }
}
