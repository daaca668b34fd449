package org.convbn.testkit.reference;

import org.convbn.core.ConvConfig;
import org.convbn.core.ConvTransposeConfig;
import org.convbn.core.LinearConfig;
import org.convbn.core.ProducerConfig;

/**
 * Naive float64 forward and backward halves of every producer kind: {@link ReferenceConv} for conv2d, and here the
 * transposed conv and the linear layer, each from its definition. All methods allocate their result and modify
 * nothing.
 *
 * <p>Transposed conv, PyTorch's definition as a scatter: every input value {@code X[n, i, h, w]} adds
 * {@code X[n, i, h, w] * W[i, j, p, q]} to output {@code Y[n, g*O/G + j, h*sH - pH + p*dH, w*sW - pW + q*dW]}
 * (positions outside the output are dropped), g the group of input channel i. The two backward halves are the same
 * loop with the product's other factors.
 *
 * <p>Linear: {@code Y[n, o, l] = b[o] + sum_i W[o, i] X[n, i, l]} (a rank-2 input has L = 1).
 */
public final class ReferenceProducers {
    private ReferenceProducers() {}

    /** @return {@code A(x; w) + b} */
    public static Tensor forward(ProducerConfig p, Tensor x, Tensor w, Tensor b) {
        if (p instanceof ConvConfig c) {
            return ReferenceConv.forward(c, x, w, b);
        }
        int[] out = outputShape(p, x.shape());
        Tensor y = Tensor.zeros(out);
        visit(p, x.shape(), (xi, wi, yi) -> y.data()[yi] += x.data()[xi] * w.data()[wi]);
        if (b != null) {
            int o = out[1];
            int plane = y.size() / (out[0] * o);
            for (int k = 0; k < y.size(); k++) {
                y.data()[k] += b.data()[k / plane % o];
            }
        }
        return y;
    }

    /** @return dL/dX given dL/dY {@code gy} */
    public static Tensor backwardInput(ProducerConfig p, int[] inputShape, Tensor w, Tensor gy) {
        if (p instanceof ConvConfig c) {
            return ReferenceConv.backwardInput(c, inputShape, w, gy);
        }
        Tensor gx = Tensor.zeros(inputShape);
        visit(p, inputShape, (xi, wi, yi) -> gx.data()[xi] += gy.data()[yi] * w.data()[wi]);
        return gx;
    }

    /** @return dL/dW given the input and dL/dY {@code gy} */
    public static Tensor backwardWeight(ProducerConfig p, Tensor x, Tensor gy) {
        if (p instanceof ConvConfig c) {
            return ReferenceConv.backwardWeight(c, x, gy);
        }
        Tensor gw = Tensor.zeros(Tensor.dims(p.weightShape()));
        visit(p, x.shape(), (xi, wi, yi) -> gw.data()[wi] += x.data()[xi] * gy.data()[yi]);
        return gw;
    }

    /** @return the output shape for an input shape */
    public static int[] outputShape(ProducerConfig p, int[] inputShape) {
        long[] in = new long[inputShape.length];
        for (int i = 0; i < in.length; i++) {
            in[i] = inputShape[i];
        }
        return Tensor.dims(p.outputShape(in));
    }

    /** One product term of the producer: input element xi times weight element wi, added to output element yi. */
    private interface Term {
        void accept(int xi, int wi, int yi);
    }

    /** Calls {@code term} for every product term of the (non-conv2d) producer's forward, bias excluded. */
    private static void visit(ProducerConfig p, int[] inputShape, Term term) {
        int[] out = outputShape(p, inputShape);
        if (p instanceof LinearConfig l) {
            int len = inputShape.length == 3 ? inputShape[2] : 1;
            for (int n = 0; n < inputShape[0]; n++) {
                for (int o = 0; o < l.outFeatures(); o++) {
                    for (int i = 0; i < l.inFeatures(); i++) {
                        for (int t = 0; t < len; t++) {
                            term.accept(
                                    (n * l.inFeatures() + i) * len + t,
                                    o * l.inFeatures() + i,
                                    (n * l.outFeatures() + o) * len + t);
                        }
                    }
                }
            }
            return;
        }
        ConvTransposeConfig c = (ConvTransposeConfig) p;
        int h = inputShape[2];
        int w = inputShape[3];
        int oh = out[2];
        int ow = out[3];
        int opg = c.outChannelsPerGroup();
        for (int n = 0; n < inputShape[0]; n++) {
            for (int i = 0; i < c.inChannels(); i++) {
                int group = i / c.inChannelsPerGroup();
                for (int r = 0; r < h; r++) {
                    for (int s = 0; s < w; s++) {
                        int xi = ((n * c.inChannels() + i) * h + r) * w + s;
                        for (int j = 0; j < opg; j++) {
                            int o = group * opg + j;
                            for (int kh = 0; kh < c.kernelH(); kh++) {
                                int y = r * c.strideH() - c.padH() + kh * c.dilationH();
                                if (y < 0 || y >= oh) {
                                    continue;
                                }
                                for (int kw = 0; kw < c.kernelW(); kw++) {
                                    int x = s * c.strideW() - c.padW() + kw * c.dilationW();
                                    if (x < 0 || x >= ow) {
                                        continue;
                                    }
                                    int wi = ((i * opg + j) * c.kernelH() + kh) * c.kernelW() + kw;
                                    term.accept(xi, wi, ((n * c.outChannels() + o) * oh + y) * ow + x);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
