/** Datasets on disk: the IDX format and Fashion-MNIST. */
package org.convbn.train.data;
