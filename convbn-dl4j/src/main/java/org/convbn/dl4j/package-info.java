/**
 * DL4J integration: {@link org.convbn.dl4j.ConvBNLayer}, a layer configuration (JSON-serialisable with the
 * network) whose runtime runs the library's ConvBN block in TRAIN, EVAL, TUNE or DEPLOY;
 * {@link org.convbn.dl4j.ConvBNConverter}, which fuses the ConvolutionLayer -> BatchNormalization pairs of an
 * existing ComputationGraph or MultiLayerNetwork into such layers with their trained parameters; and
 * {@link org.convbn.dl4j.ConvBNLayers}, which switches a network's ConvBN layers between modes.
 */
package org.convbn.dl4j;
