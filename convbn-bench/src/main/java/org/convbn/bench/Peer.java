package org.convbn.bench;

/** The framework the report can run the same step in, beside convbn. */
public enum Peer {
    /** No peer. */
    NONE,
    /** PyTorch on CPU (torchvision's ResNet), through the project's torch_step.py and a python3 with torch. */
    PYTORCH
}
