/**
 * The ConvBN block on ND4J: {@link org.convbn.nd4j.ConvBNBlock} (thin and stateful) over the pure functions of
 * each mode (ModeFunctions) and the grouped conv on libnd4j's conv2d ops ({@link org.convbn.nd4j.Conv2dOps}).
 * Depends on nd4j-api only: the application chooses the backend (nd4j-native or nd4j-cuda).
 */
package org.convbn.nd4j;
