package org.convbn.onednn;

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
    private static volatile Boolean available;

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

    /** @return whether ND4J runs on CPU and oneDNN's natives load here (checked once, logged when not) */
    public static boolean available() {
        Boolean a = available;
        if (a == null) {
            a = check();
            available = a;
        }
        return a;
    }

    private static boolean check() {
        String backend = Nd4j.getBackend().getClass().getSimpleName();
        if (!backend.toLowerCase(java.util.Locale.ROOT).contains("cpu")) {
            LOG.info("oneDNN kernels off: ND4J backend {} is not the CPU backend", backend);
            return false;
        }
        try {
            Loader.load(org.bytedeco.dnnl.global.dnnl.class);
        } catch (Throwable e) {
            LOG.warn("oneDNN kernels off, ND4J's kernels run instead: {} (add org.bytedeco:dnnl with your platform's "
                    + "classifier)", e.toString());
            return false;
        }
        OnednnPlatform platform = OnednnPlatform.current(); // the cap goes in before the engine's first primitive
        LOG.info("oneDNN kernels on: {}", platform.describe());
        return Dnnl.ENGINE != null;
    }
}
