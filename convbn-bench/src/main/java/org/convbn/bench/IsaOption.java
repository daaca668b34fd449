package org.convbn.bench;

import java.util.Map;
import org.convbn.onednn.OnednnPlatform.IsaCap;
import picocli.CommandLine.Option;

/**
 * {@code --isa}: the instruction set oneDNN may use in the measuring processes, convbn's and the PyTorch peer's
 * alike, through the environment variable both oneDNN builds read ({@code ONEDNN_MAX_CPU_ISA}), so that one machine
 * reproduces another's numbers (an AVX2 machine on an AVX-512 one) and both libraries run under the same cap.
 */
final class IsaOption {
    /** The variables oneDNN reads for its cap: the current name and the one before oneDNN 2.0. */
    static final String[] VARIABLES = {"ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"};

    @Option(
            names = "--isa",
            description = "cap oneDNN's instruction set in convbn and the PyTorch peer alike: avx2, "
                    + "avx512 or native (no cap); without it the environment's ONEDNN_MAX_CPU_ISA, if any, holds")
    String isa;

    /**
     * @return the cap asked for, or null when none
     * @throws IllegalArgumentException naming --isa for an unknown value
     */
    IsaCap cap() {
        return isa == null ? null : IsaCap.parse("--isa", isa);
    }

    /** Sets (or, for native, clears) the cap in a child process's environment; leaves it alone without --isa. */
    void apply(Map<String, String> environment) {
        IsaCap cap = cap();
        if (cap == null) {
            return;
        }
        for (String v : VARIABLES) {
            if (cap == IsaCap.NATIVE) {
                environment.remove(v);
            } else {
                environment.put(v, cap.environmentValue());
            }
        }
    }

    /** @return what the measuring processes run under, e.g. "avx2 (ONEDNN_MAX_CPU_ISA=AVX2)" or "native" */
    String describe() {
        IsaCap cap = cap();
        if (cap == null) {
            String inherited = System.getenv(VARIABLES[0]);
            return inherited == null ? "native" : "ONEDNN_MAX_CPU_ISA=" + inherited + " (from the environment)";
        }
        return cap == IsaCap.NATIVE ? "native" : cap.cliName() + " (ONEDNN_MAX_CPU_ISA=" + cap.environmentValue() + ")";
    }
}
