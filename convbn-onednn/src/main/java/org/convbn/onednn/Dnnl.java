package org.convbn.onednn;

import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.Set;
import org.bytedeco.dnnl.IntMemoryMap;
import org.bytedeco.dnnl.engine;
import org.bytedeco.dnnl.global.dnnl;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.primitive;
import org.bytedeco.dnnl.primitive_attr;
import org.bytedeco.dnnl.primitive_desc_base;
import org.bytedeco.dnnl.stream;
import org.bytedeco.javacpp.Pointer;
import org.convbn.nd4j.kernel.Layout;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Small helpers over JavaCPP's oneDNN API: the CPU engine, memory descriptors of feature maps and parameters, and a
 * {@link Prepared} primitive whose memory objects are made once and re-pointed at each call's arrays.
 */
final class Dnnl {
    private Dnnl() {}

    /** The CPU engine, shared: oneDNN engines are thread-safe. */
    static final engine ENGINE = new engine(engine.kind.cpu, 0);

    static memory.desc desc(long[] dims, memory.format_tag tag) {
        return new memory.desc(dims, memory.data_type.f32, tag);
    }

    /** A feature map's descriptor: logical dims, the layout's tag. */
    static memory.desc featureMap(long[] logical, Layout layout) {
        return desc(
                logical,
                switch (layout) {
                    case NCHW -> memory.format_tag.nchw;
                    case BLOCKED8 -> memory.format_tag.nChw8c;
                    case BLOCKED16 -> memory.format_tag.nChw16c;
                });
    }

    /** A flat run of {@code length} float32 values, for elementwise work on any layout. */
    static memory.desc flat(long length) {
        return desc(new long[] {length}, memory.format_tag.x);
    }

    /** A per-channel vector. */
    static memory.desc vector(long c) {
        return desc(new long[] {c}, memory.format_tag.x);
    }

    /** Attributes with a user-managed scratchpad: the kernels give each call its scratch from their arena. */
    static primitive_attr userScratchpad() {
        primitive_attr attr = new primitive_attr();
        attr.set_scratchpad_mode(dnnl.scratchpad_mode.user);
        return attr;
    }

    /**
     * A primitive with a memory object per argument, made once; each call points the memories at its arrays with
     * {@link #bind} and runs.
     */
    static final class Prepared implements AutoCloseable {
        final primitive primitive;
        /** oneDNN's name of the implementation it chose, e.g. "jit:avx2" or "ref:any". */
        final String implementation;
        /** The primitive kind and propagation, e.g. "convolution backward_weights" or "binary". */
        final String kind;
        /** The dims of its source and destination (or their gradients), e.g. "8x64x56x56 -> 8x64x28x28". */
        final String problem;

        final long scratchpadBytes;
        /** Whether the primitive has run (its implementation recorded by the kernels). */
        boolean ran;
        /** For convolutions: the layouts of the feature maps the primitive reads and writes. */
        Layout srcLayout;

        Layout dstLayout;
        /** For convolutions: the reorder between the user's OIHW weights and the primitive's (weights or their gradient). */
        Prepared weightsReorder;
        /** For convolutions: the reorder of the user's weights into the primitive's, each output channel scaled. */
        Prepared scaledWeightsReorder;

        private final IntMemoryMap args = new IntMemoryMap();
        private final Map<Integer, memory> memories = new HashMap<>();
        private final Map<Integer, memory.desc> descs = new HashMap<>();

        Prepared(primitive primitive, primitive_desc_base pd) {
            this.primitive = primitive;
            this.implementation = pd.impl_info_str().getString();
            this.kind = kindOf(pd);
            this.problem =
                    describe(pd.src_desc(), pd.diff_src_desc()) + " -> " + describe(pd.dst_desc(), pd.diff_dst_desc());
            memory.desc scratch = pd.scratchpad_desc();
            this.scratchpadBytes = scratch.get_size();
            if (scratchpadBytes > 0) {
                arg(dnnl.DNNL_ARG_SCRATCHPAD, scratch);
            }
        }

        /** Declares an argument with its descriptor. */
        Prepared arg(int arg, memory.desc desc) {
            memory m = new memory(desc, ENGINE, (Pointer) null);
            memories.put(arg, m);
            descs.put(arg, desc);
            args.put(arg, m);
            return this;
        }

        /** @return the bytes an argument's buffer must hold */
        long bytes(int arg) {
            return descs.get(arg).get_size();
        }

        /** Points an argument at an array's first element. */
        void bind(int arg, INDArray a) {
            memories.get(arg).set_data_handle(a.data().addressPointer());
        }

        void run(stream s) {
            primitive.execute(s, args);
            s._wait();
        }

        /**
         * @return whether oneDNN chose one of its direct jit kernels ("jit:avx2", "jit_1x1:avx512_core", "jit_dw:avx2"),
         *         not a GEMM-based or reference one
         */
        boolean isDirect() {
            return implementation.startsWith("jit");
        }

        /** @return whether oneDNN chose its reference implementation, orders of magnitude slower than a jit one */
        boolean isReference() {
            return implementation.startsWith("ref");
        }

        /** Frees the primitive, its memory objects and the weight reorders that belong to it. */
        @Override
        public void close() {
            if (weightsReorder != null) {
                weightsReorder.close();
            }
            if (scaledWeightsReorder != null) {
                scaledWeightsReorder.close();
            }
            memories.values().forEach(memory::close);
            // an argument's descriptor may be shared by two arguments (a BatchNorm's source and destination)
            Set<memory.desc> distinct = Collections.newSetFromMap(new IdentityHashMap<>());
            distinct.addAll(descs.values());
            distinct.forEach(memory.desc::close);
            args.close();
            primitive.close();
        }
    }

    /** @return e.g. "convolution forward_training": the primitive's kind and, where it has one, its propagation */
    private static String kindOf(primitive_desc_base pd) {
        primitive.kind k = pd.get_kind().intern(); // JavaCPP's native enums have no name until interned
        String kind = k.name() != null ? k.name() : "primitive " + k.value;
        try {
            int prop = (int) pd.query_s64(dnnl.dnnl_query_prop_kind);
            for (dnnl.prop_kind p : dnnl.prop_kind.values()) {
                if (p.value == prop && p != dnnl.prop_kind.undef) {
                    return kind + " " + p.name();
                }
            }
        } catch (RuntimeException e) {
            // reorders and some others answer no propagation kind
        }
        return kind;
    }

    /** @return the dims of the first of two memory descriptors that has any, e.g. "8x64x56x56", or "-" */
    private static String describe(memory.desc d, memory.desc otherwise) {
        memory.desc m = d.data().ndims() > 0 ? d : otherwise;
        int n = m.data().ndims();
        StringBuilder sb = new StringBuilder(n == 0 ? "-" : "");
        for (int i = 0; i < n; i++) {
            sb.append(i == 0 ? "" : "x").append(m.data().dims().get(i));
        }
        return sb.toString();
    }
}
