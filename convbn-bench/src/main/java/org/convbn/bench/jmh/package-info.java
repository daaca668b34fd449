/**
 * JMH benchmarks of a block step and a network step per mode, the bare conv floor, and a profiler of peak
 * resident memory. How to run them: docs/benchmarks.md.
 */
package org.convbn.bench.jmh;
