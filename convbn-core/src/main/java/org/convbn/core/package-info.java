/**
 * Mode semantics of a ConvBN block without any tensor library: the {@link org.convbn.core.Mode} enum, immutable
 * configurations ({@link org.convbn.core.ConvConfig}, {@link org.convbn.core.BatchNormConfig},
 * {@link org.convbn.core.ConvBNConfig}), the rules of mode transitions and the exact retained-byte accounting.
 * The float64 oracle lives in {@link org.convbn.testkit.reference}.
 */
package org.convbn.core;
