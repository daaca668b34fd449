package org.convbn.core;

/**
 * The four ways a ConvBN block (Conv2d followed by BatchNorm) can run. This table is the project's one statement of
 * what each mode keeps: {@link RetainedBytes#predict} computes its exact bytes (and the tests hold the blocks to
 * them), the blocks' saved-tensor records hold exactly these tensors, and the documentation points here.
 *
 * <table>
 *   <caption>What each mode normalises with, keeps for backward, and trains</caption>
 *   <tr><th>mode</th><th>statistics</th><th>kept between forward and backward</th><th>trainable</th></tr>
 *   <tr><td>TRAIN</td><td>batch (running ones updated)</td><td>X, Y, batch mean/var</td><td>W, b, gamma, beta</td></tr>
 *   <tr><td>EVAL</td><td>running, frozen</td><td>X, Y</td><td>W, b, gamma, beta</td></tr>
 *   <tr><td>DEPLOY</td><td>folded once into the conv</td><td>X</td><td>W', b'</td></tr>
 *   <tr><td>TUNE</td><td>running, frozen, folded every forward</td><td>X, b', s (per channel); with {@link TuneFold#KEEP} also W' (weight-sized)</td><td>W, b, gamma, beta</td></tr>
 * </table>
 *
 * <p>EVAL, DEPLOY and TUNE compute the same output for the same underlying parameters; EVAL and TUNE also
 * give the same gradients. TUNE costs what DEPLOY costs in the forward and keeps one output-sized feature map
 * less than EVAL. The math of each mode's forward and backward: docs/design.md and {@code ModeFunctions}.
 */
public enum Mode {
    /** Batch statistics normalise; running statistics are updated with momentum. */
    TRAIN,
    /** Running statistics frozen; BN applied as a separate per-channel affine after the conv. */
    EVAL,
    /** BN folded once into the conv; the folded weight and bias are the parameters. */
    DEPLOY,
    /** BN re-folded on every forward from W, b, gamma, beta and the frozen statistics. */
    TUNE
}
