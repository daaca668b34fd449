/**
 * Transfer learning end to end: torchvision weights from safetensors ({@link org.convbn.transfer.Pretrained}), the
 * user's images from a folder of class folders ({@link org.convbn.transfer.ImageFolder},
 * {@link org.convbn.transfer.ImageBatches}), fine-tuning in any mode with a frozen prefix, validation, checkpoints
 * and resume ({@link org.convbn.transfer.FineTuning}), and the tuned weights back out in torchvision's names.
 */
package org.convbn.transfer;
