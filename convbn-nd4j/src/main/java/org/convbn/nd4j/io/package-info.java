/**
 * Weights in and out: the safetensors format ({@link org.convbn.nd4j.io.Safetensors}, strict about untrusted
 * files, atomic writes) and PyTorch / torchvision state_dict naming ({@link org.convbn.nd4j.io.StateDict}).
 */
package org.convbn.nd4j.io;
