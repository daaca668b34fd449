/** A small training loop and in-memory datasets for the examples: accuracy, learning curves. */
package org.convbn.train;
