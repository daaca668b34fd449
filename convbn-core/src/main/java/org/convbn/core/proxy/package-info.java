/**
 * Batch-independent normalisation: GroupNorm / LayerNorm without affine followed by a proxy-normalised activation,
 * the configuration and the weight-sized float64 math of the proxy (quantiles, moments and their gradients).
 */
package org.convbn.core.proxy;
