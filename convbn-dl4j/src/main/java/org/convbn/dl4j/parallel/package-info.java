/**
 * Data-parallel training of DL4J networks (converted ones among them) on one machine:
 * {@link org.convbn.dl4j.parallel.AveragingParallelWrapper}, DL4J's ParallelWrapper in parameter-averaging mode with
 * every worker starting from the same parameters. Needs {@code deeplearning4j-parallel-wrapper} on the class path
 * (an optional dependency of convbn-dl4j).
 */
package org.convbn.dl4j.parallel;
