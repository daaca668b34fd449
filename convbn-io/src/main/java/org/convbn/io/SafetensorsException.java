package org.convbn.io;

import java.io.IOException;

/** A safetensors file that is malformed, truncated, inconsistent or uses an unsupported feature. */
public final class SafetensorsException extends IOException {
    public SafetensorsException(String message) {
        super(message);
    }

    public SafetensorsException(String message, Throwable cause) {
        super(message, cause);
    }
}
