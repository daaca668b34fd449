package org.convbn.transfer;

import net.jcip.annotations.NotThreadSafe;

/**
 * A data source whose order (and augmentation) is a function of the epoch, so that a run resumed at epoch e sees
 * exactly the batches an uninterrupted run sees there. {@link FineTuning} calls {@link #startEpoch} before each
 * training epoch; a plain DataSetIterator is only reset.
 */
@NotThreadSafe
public interface EpochAware {
    /**
     * Rewinds to the first batch of {@code epoch}, in that epoch's order.
     *
     * @param epoch 0-based
     */
    void startEpoch(int epoch);
}
