package org.convbn.io;

import java.io.IOException;
import net.jcip.annotations.ThreadSafe;

/** A safetensors file that is malformed, truncated, inconsistent or uses an unsupported feature. */
@ThreadSafe
public final class SafetensorsException extends IOException {
    public SafetensorsException(String message) {
        super(message);
    }

    public SafetensorsException(String message, Throwable cause) {
        super(message, cause);
    }
}
