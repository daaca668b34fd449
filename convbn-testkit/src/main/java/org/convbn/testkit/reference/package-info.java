/**
 * A plain-Java float64 implementation of the four modes, written straight from the definitions and used as the
 * test oracle of every backend. It is deliberately naive (a seven-loop convolution) and allocates freely.
 */
package org.convbn.testkit.reference;
