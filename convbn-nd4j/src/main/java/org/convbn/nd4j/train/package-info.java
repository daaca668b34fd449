/** A small training loop and in-memory datasets for the examples: SGD with momentum, accuracy, learning curves. */
package org.convbn.nd4j.train;
