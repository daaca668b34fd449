package org.convbn.testkit.reference;

import org.convbn.core.ConvConfig;

/**
 * A naive float64 grouped, strided, dilated, padded 2-D convolution in NCHW and its two backward halves. Slow
 * and obviously correct: seven nested loops over the definition
 * <pre>
 *   Y[n,o,i,j] = b[o] + sum_{c in group(o), p, q} X[n, c, i*sH - padTop + p*dH, j*sW - padLeft + q*dW] * W[o, c', p, q]
 * </pre>
 * with out-of-range input positions reading zero. All methods allocate their result and modify nothing.
 */
public final class ReferenceConv {
    private ReferenceConv() {}

    /**
     * @param c the conv configuration
     * @param x input {@code [N, C, H, W]}, not modified
     * @param w weight {@code [O, C/groups, kH, kW]}, not modified
     * @param b bias {@code [O]} or null for none, not modified
     * @return {@code [N, O, oH, oW]}
     */
    public static Tensor forward(ConvConfig c, Tensor x, Tensor w, Tensor b) {
        Geometry g = new Geometry(c, x);
        Tensor y = Tensor.zeros(g.n, c.outChannels(), g.oh, g.ow);
        double[] xd = x.data();
        double[] wd = w.data();
        double[] yd = y.data();
        for (int n = 0; n < g.n; n++) {
            for (int o = 0; o < c.outChannels(); o++) {
                int c0 = (o / c.outChannelsPerGroup()) * c.inChannelsPerGroup();
                double bias = b == null ? 0 : b.data()[o];
                for (int i = 0; i < g.oh; i++) {
                    for (int j = 0; j < g.ow; j++) {
                        double acc = bias;
                        for (int ci = 0; ci < c.inChannelsPerGroup(); ci++) {
                            for (int p = 0; p < c.kernelH(); p++) {
                                int r = g.row(i, p);
                                if (r < 0 || r >= g.h) {
                                    continue;
                                }
                                for (int q = 0; q < c.kernelW(); q++) {
                                    int s = g.col(j, q);
                                    if (s < 0 || s >= g.w) {
                                        continue;
                                    }
                                    acc += xd[g.xIndex(n, c0 + ci, r, s)] * wd[g.wIndex(o, ci, p, q)];
                                }
                            }
                        }
                        yd[g.yIndex(n, o, i, j)] = acc;
                    }
                }
            }
        }
        return y;
    }

    /**
     * Gradient with respect to the input: the adjoint of {@link #forward} in X.
     *
     * @param c the conv configuration
     * @param inputShape {@code [N, C, H, W]} of the forward's input, not modified
     * @param w weight, not modified
     * @param gy gradient of the output {@code [N, O, oH, oW]}, not modified
     * @return dX {@code [N, C, H, W]}
     */
    public static Tensor backwardInput(ConvConfig c, int[] inputShape, Tensor w, Tensor gy) {
        Tensor gx = Tensor.zeros(inputShape);
        Geometry g = new Geometry(c, gx);
        double[] gxd = gx.data();
        double[] wd = w.data();
        double[] gyd = gy.data();
        for (int n = 0; n < g.n; n++) {
            for (int o = 0; o < c.outChannels(); o++) {
                int c0 = (o / c.outChannelsPerGroup()) * c.inChannelsPerGroup();
                for (int i = 0; i < g.oh; i++) {
                    for (int j = 0; j < g.ow; j++) {
                        double up = gyd[g.yIndex(n, o, i, j)];
                        for (int ci = 0; ci < c.inChannelsPerGroup(); ci++) {
                            for (int p = 0; p < c.kernelH(); p++) {
                                int r = g.row(i, p);
                                if (r < 0 || r >= g.h) {
                                    continue;
                                }
                                for (int q = 0; q < c.kernelW(); q++) {
                                    int s = g.col(j, q);
                                    if (s < 0 || s >= g.w) {
                                        continue;
                                    }
                                    gxd[g.xIndex(n, c0 + ci, r, s)] += up * wd[g.wIndex(o, ci, p, q)];
                                }
                            }
                        }
                    }
                }
            }
        }
        return gx;
    }

    /**
     * Gradient with respect to the weight.
     *
     * @param c the conv configuration
     * @param x the forward's input, not modified
     * @param gy gradient of the output, not modified
     * @return dW {@code [O, C/groups, kH, kW]}
     */
    public static Tensor backwardWeight(ConvConfig c, Tensor x, Tensor gy) {
        Geometry g = new Geometry(c, x);
        Tensor gw = Tensor.zeros(c.outChannels(), c.inChannelsPerGroup(), c.kernelH(), c.kernelW());
        double[] xd = x.data();
        double[] gwd = gw.data();
        double[] gyd = gy.data();
        for (int n = 0; n < g.n; n++) {
            for (int o = 0; o < c.outChannels(); o++) {
                int c0 = (o / c.outChannelsPerGroup()) * c.inChannelsPerGroup();
                for (int i = 0; i < g.oh; i++) {
                    for (int j = 0; j < g.ow; j++) {
                        double up = gyd[g.yIndex(n, o, i, j)];
                        for (int ci = 0; ci < c.inChannelsPerGroup(); ci++) {
                            for (int p = 0; p < c.kernelH(); p++) {
                                int r = g.row(i, p);
                                if (r < 0 || r >= g.h) {
                                    continue;
                                }
                                for (int q = 0; q < c.kernelW(); q++) {
                                    int s = g.col(j, q);
                                    if (s < 0 || s >= g.w) {
                                        continue;
                                    }
                                    gwd[g.wIndex(o, ci, p, q)] += up * xd[g.xIndex(n, c0 + ci, r, s)];
                                }
                            }
                        }
                    }
                }
            }
        }
        return gw;
    }

    /** Index arithmetic of one conv applied to one input shape. */
    private static final class Geometry {
        final ConvConfig c;
        final int n;
        final int ch;
        final int h;
        final int w;
        final int oh;
        final int ow;
        final int top;
        final int left;

        Geometry(ConvConfig c, Tensor x) {
            this.c = c;
            this.n = x.dim(0);
            this.ch = x.dim(1);
            this.h = x.dim(2);
            this.w = x.dim(3);
            c.checkInputShape("x", new long[] {n, ch, h, w});
            this.oh = c.outputHeight(h);
            this.ow = c.outputWidth(w);
            this.top = c.padTop(h);
            this.left = c.padLeft(w);
        }

        int row(int i, int p) {
            return i * c.strideH() - top + p * c.dilationH();
        }

        int col(int j, int q) {
            return j * c.strideW() - left + q * c.dilationW();
        }

        int xIndex(int nn, int cc, int r, int s) {
            return ((nn * ch + cc) * h + r) * w + s;
        }

        int yIndex(int nn, int o, int i, int j) {
            return ((nn * c.outChannels() + o) * oh + i) * ow + j;
        }

        int wIndex(int o, int ci, int p, int q) {
            return ((o * c.inChannelsPerGroup() + ci) * c.kernelH() + p) * c.kernelW() + q;
        }
    }
}
