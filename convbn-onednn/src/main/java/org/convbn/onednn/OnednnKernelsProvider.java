package org.convbn.onednn;

import java.util.Locale;
import net.jcip.annotations.ThreadSafe;
import org.bytedeco.javacpp.Loader;
import org.convbn.nd4j.kernel.Arena;
import org.convbn.nd4j.kernel.Kernels;
import org.convbn.nd4j.kernel.KernelsProvider;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Provides {@link OnednnKernels} for float32 when ND4J runs on its CPU backend and oneDNN's natives load (the
 * application puts {@code org.bytedeco:dnnl} with its platform's classifier on the class path). Found through
 * {@link java.util.ServiceLoader}; ranks above ND4J's own kernels.
 */
@ThreadSafe
public final class OnednnKernelsProvider implements KernelsProvider {
    /** The name {@code -Dconvbn.kernels=onednn} selects. */
    public static final String NAME = "onednn";

    private static final Logger LOG = LoggerFactory.getLogger(OnednnKernelsProvider.class);
    /** Why the kernels cannot run ("" when they can), once known. */
    private static volatile String unavailable;

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public int priority() {
        return 10;
    }

    @Override
    public boolean supports(DataType type) {
        return type == DataType.FLOAT && available();
    }

    @Override
    public Kernels create(DataType type, Arena arena) {
        if (!supports(type)) {
            throw new IllegalArgumentException("type: oneDNN kernels compute FLOAT on ND4J's CPU backend with oneDNN's "
                    + "natives present, got " + type + (available() ? "" : " (oneDNN or the CPU backend unavailable)"));
        }
        return new OnednnKernels(arena);
    }

    @Override
    public String describe() {
        return OnednnKernels.describe(OnednnPlatform.current().preferredLayout()); // what the kernels it makes say
    }

    @Override
    public String unavailableBecause(DataType type) {
        if (type != DataType.FLOAT) {
            return null; // float32 only, by design: not a fall-back
        }
        String why = unavailable();
        return why == null ? "no kernel for " + type : why;
    }

    /** @return whether ND4J runs on CPU and oneDNN's natives load here (checked once) */
    public static boolean available() {
        return unavailable() == null;
    }

    /** @return why the oneDNN kernels cannot run in this process, null when they can (checked once) */
    private static String unavailable() {
        String a = unavailable;
        if (a == null) {
            a = check();
            unavailable = a;
        }
        return a.isEmpty() ? null : a;
    }

    /** @return why not, or "" when the kernels can run */
    private static String check() {
        String backend = Nd4j.getBackend().getClass().getSimpleName();
        if (!backend.toLowerCase(Locale.ROOT).contains("cpu")) {
            return "ND4J's backend " + backend + " is not the CPU backend";
        }
        try {
            Loader.load(org.bytedeco.dnnl.global.dnnl.class);
        } catch (Throwable e) {
            LOG.debug("oneDNN's natives do not load", e);
            return "oneDNN's natives do not load: " + e + " (add org.bytedeco:dnnl with your platform's classifier)";
        }
        OnednnPlatform.current(); // the cap goes in before the engine's first primitive
        return Dnnl.ENGINE != null ? "" : "oneDNN has no CPU engine";
    }
}
