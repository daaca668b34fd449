/**
 * The mode comparison report (a runnable jar: {@code java -jar convbn-bench/target/convbn-bench.jar report})
 * and the benchmarks' shared network step.
 */
package org.convbn.bench;
