package org.convbn.onednn;

import java.util.Locale;
import net.jcip.annotations.Immutable;
import org.bytedeco.dnnl.dnnl_version_t;
import org.bytedeco.dnnl.global.dnnl;
import org.convbn.nd4j.kernel.Layout;

/**
 * What oneDNN runs on in this process: its version, the instruction set its kernels use (the CPU's, or less when
 * capped), and the feature-map layout that goes with that instruction set: oneDNN's AVX-512 convolutions compute in
 * blocks of 16 channels, its AVX2 ones in blocks of 8, and below AVX2 the kernels run on plain NCHW.
 *
 * <p>Two system properties change the defaults:
 * <ul>
 *   <li>{@value #ISA_PROPERTY} ({@code avx2}, {@code avx512} or {@code native}), read once before oneDNN's first
 *   primitive, caps the instruction set, as the
 *   environment variable {@code ONEDNN_MAX_CPU_ISA} does (which oneDNN reads itself, and which a PyTorch peer
 *   honours too); {@code native} is no cap;</li>
 *   <li>{@value #LAYOUT_PROPERTY} ({@code auto}, {@code nchw}, {@code blocked8} or {@code blocked16}), read by
 *   each new kernel set ({@link #preferredLayout()}), forces the feature-map layout, e.g. to test the 16-channel
 *   layout on an AVX2 machine (oneDNN then runs slower kernels).</li>
 * </ul>
 *
 * @param version oneDNN's version, e.g. "2.5.2"
 * @param isa the effective instruction set, oneDNN's name for it, e.g. "avx2" or "avx512_core_bf16"
 * @param nativeLayout the feature-map layout oneDNN's convolutions compute in on that instruction set
 */
@Immutable
public record OnednnPlatform(String version, String isa, Layout nativeLayout) {
    /** System property capping oneDNN's instruction set: avx2, avx512 or native. */
    public static final String ISA_PROPERTY = "convbn.onednn.isa";
    /** System property forcing the feature-map layout: auto, nchw, blocked8 or blocked16. */
    public static final String LAYOUT_PROPERTY = "convbn.layout";

    /** The instruction-set caps {@value #ISA_PROPERTY} and the bench's {@code --isa} accept. */
    @Immutable
    public enum IsaCap {
        /** oneDNN's AVX2 kernels, 8-channel blocks (what an AVX2-only CPU runs). */
        AVX2("AVX2", dnnl.dnnl_cpu_isa_avx2),
        /** oneDNN's AVX-512 kernels with VNNI and bfloat16 where present, 16-channel blocks; no AMX. */
        AVX512("AVX512_CORE_BF16", dnnl.dnnl_cpu_isa_avx512_core_bf16),
        /** No cap: whatever the CPU has. */
        NATIVE("ALL", dnnl.dnnl_cpu_isa_all);

        private final String onednnName;
        private final int onednnValue;

        IsaCap(String onednnName, int onednnValue) {
            this.onednnName = onednnName;
            this.onednnValue = onednnValue;
        }

        /** @return the value of {@code ONEDNN_MAX_CPU_ISA} with the same effect, e.g. "AVX2" */
        public String environmentValue() {
            return onednnName;
        }

        /** @return the lower-case name the property and {@code --isa} take */
        public String cliName() {
            return name().toLowerCase(Locale.ROOT);
        }

        /**
         * @param argument the option or property the value came from, for the message
         * @param name avx2, avx512 or native (any case)
         * @return the cap
         * @throws IllegalArgumentException naming {@code argument} for anything else
         */
        public static IsaCap parse(String argument, String name) {
            for (IsaCap c : values()) {
                if (c.cliName().equalsIgnoreCase(name.trim())) {
                    return c;
                }
            }
            throw new IllegalArgumentException(
                    argument + ": expected one of avx2, avx512, native, got \"" + name + "\"");
        }
    }

    private static volatile OnednnPlatform current;

    /**
     * @return this process's platform, read once (the cap of {@value #ISA_PROPERTY} applied first)
     * @throws IllegalArgumentException when a property holds an unknown value
     * @throws IllegalStateException when oneDNN refuses the cap (it was already fixed by earlier oneDNN work)
     */
    public static OnednnPlatform current() {
        OnednnPlatform p = current;
        if (p == null) {
            synchronized (OnednnPlatform.class) {
                p = current;
                if (p == null) {
                    p = read();
                    current = p;
                }
            }
        }
        return p;
    }

    private static OnednnPlatform read() {
        String cap = System.getProperty(ISA_PROPERTY);
        if (cap != null && !cap.isBlank()) {
            IsaCap c = IsaCap.parse(ISA_PROPERTY, cap);
            int status = dnnl.dnnl_set_max_cpu_isa(c.onednnValue);
            if (status != dnnl.dnnl_success) {
                throw new IllegalStateException(ISA_PROPERTY + ": oneDNN refused the cap " + c.cliName()
                        + " (status " + status + "): set it before the first oneDNN primitive, or use the "
                        + "environment variable ONEDNN_MAX_CPU_ISA=" + c.environmentValue());
            }
        }
        int effective = dnnl.dnnl_get_effective_cpu_isa();
        dnnl_version_t v = dnnl.dnnl_version();
        String version = v.major() + "." + v.minor() + "." + v.patch();
        return new OnednnPlatform(version, isaName(effective), layoutFor(effective));
    }

    /**
     * @return the layout new kernel sets keep feature maps in: the one {@value #LAYOUT_PROPERTY} names, else
     *         {@link #nativeLayout()}
     * @throws IllegalArgumentException when the property holds an unknown value
     */
    public Layout preferredLayout() {
        String forced = System.getProperty(LAYOUT_PROPERTY, "auto").trim().toLowerCase(Locale.ROOT);
        return switch (forced) {
            case "auto", "" -> nativeLayout;
            case "nchw" -> Layout.NCHW;
            case "blocked8" -> Layout.BLOCKED8;
            case "blocked16" -> Layout.BLOCKED16;
            default ->
                throw new IllegalArgumentException(LAYOUT_PROPERTY + ": expected one of auto, nchw, blocked8, "
                        + "blocked16, got \"" + forced + "\"");
        };
    }

    /** @return the layout oneDNN's convolutions compute in on an instruction set (oneDNN's bit-mask value) */
    static Layout layoutFor(int isa) {
        if (includes(isa, dnnl.dnnl_cpu_isa_avx512_core)) {
            return Layout.BLOCKED16;
        }
        if (includes(isa, dnnl.dnnl_cpu_isa_avx2)) {
            return Layout.BLOCKED8;
        }
        return Layout.NCHW;
    }

    private static boolean includes(int isa, int level) {
        return (isa & level) == level;
    }

    /**
     * oneDNN 2.5's instruction sets, widest first, each a superset of the ones after it in its bit mask; their names
     * in {@link #ISA_NAMES}, read in parallel.
     */
    private static final int[] ISAS = {
        dnnl.dnnl_cpu_isa_avx512_core_amx,
        dnnl.dnnl_cpu_isa_avx512_core_bf16,
        dnnl.dnnl_cpu_isa_avx512_core_vnni,
        dnnl.dnnl_cpu_isa_avx512_core,
        dnnl.dnnl_cpu_isa_avx512_mic_4ops,
        dnnl.dnnl_cpu_isa_avx512_mic,
        dnnl.dnnl_cpu_isa_avx2_vnni,
        dnnl.dnnl_cpu_isa_avx2,
        dnnl.dnnl_cpu_isa_avx,
        dnnl.dnnl_cpu_isa_sse41
    };

    private static final String[] ISA_NAMES = {
        "avx512_core_amx",
        "avx512_core_bf16",
        "avx512_core_vnni",
        "avx512_core",
        "avx512_mic_4ops",
        "avx512_mic",
        "avx2_vnni",
        "avx2",
        "avx",
        "sse41"
    };

    /** @return oneDNN's name of the widest instruction set the bit mask includes, e.g. "avx2" */
    static String isaName(int isa) {
        for (int i = 0; i < ISAS.length; i++) {
            if (includes(isa, ISAS[i])) {
                return ISA_NAMES[i];
            }
        }
        return "none";
    }

    /** @return e.g. "oneDNN 2.5.2, isa avx2 (layout BLOCKED8)" */
    public String describe() {
        return "oneDNN " + version + ", isa " + isa + " (layout " + nativeLayout + ")";
    }

    @Override
    public String toString() {
        return describe();
    }
}
