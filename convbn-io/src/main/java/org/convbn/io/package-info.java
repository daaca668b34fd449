/**
 * The safetensors format ({@link org.convbn.io.Safetensors}: strict about untrusted files, atomic writes) and
 * atomic file writes ({@link org.convbn.io.AtomicFiles}). PyTorch / torchvision naming of networks lives with the
 * networks ({@code org.convbn.net.StateDict}, module convbn-networks).
 */
package org.convbn.io;
