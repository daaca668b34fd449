package org.convbn.nd4j.kernel;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;
import java.util.stream.StreamSupport;
import net.jcip.annotations.Immutable;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Which {@link KernelsProvider} serves a data type in this process, and the line that says so.
 *
 * @param type the data type
 * @param provider the provider chosen: the one {@value KernelsProvider#PROPERTY} names, else the highest-priority
 *                 one that supports the type
 * @param fallBacks each faster provider that cannot run here, with why
 */
@Immutable
record KernelChoice(DataType type, KernelsProvider provider, List<String> fallBacks) {
    private static final Logger LOG = LoggerFactory.getLogger(Kernels.class);
    /** The types whose choice has been logged in this process. */
    private static final Set<DataType> LOGGED = ConcurrentHashMap.newKeySet();

    /** @throws IllegalArgumentException if {@value KernelsProvider#PROPERTY} names an absent or unfit provider */
    static KernelChoice of(DataType type) {
        List<KernelsProvider> providers = StreamSupport.stream(
                        ServiceLoader.load(KernelsProvider.class).spliterator(), false)
                .collect(Collectors.toCollection(ArrayList::new));
        providers.add(Nd4jKernels.PROVIDER);
        return choose(type, providers, System.getProperty(KernelsProvider.PROPERTY));
    }

    /**
     * @param type the data type
     * @param providers every provider there is; not modified
     * @param forced the name of the provider to use, or null or blank for the fastest
     * @return the choice
     * @throws IllegalArgumentException if {@code forced} names an absent or unfit provider, or none supports the type
     */
    static KernelChoice choose(DataType type, List<KernelsProvider> providers, String forced) {
        if (forced != null && !forced.isBlank()) {
            for (KernelsProvider p : providers) {
                if (p.name().equals(forced)) {
                    if (!p.supports(type)) {
                        String why = p.unavailableBecause(type);
                        throw new IllegalArgumentException(KernelsProvider.PROPERTY + ": kernels \"" + forced
                                + "\" do not support " + type + " here" + (why == null ? "" : ": " + why));
                    }
                    return new KernelChoice(type, p, List.of());
                }
            }
            throw new IllegalArgumentException(KernelsProvider.PROPERTY + ": expected one of "
                    + providers.stream().map(KernelsProvider::name).collect(Collectors.toList()) + ", got \"" + forced
                    + "\"");
        }
        KernelsProvider chosen = providers.stream()
                .filter(p -> p.supports(type))
                .max(Comparator.comparingInt(KernelsProvider::priority))
                .orElseThrow(() -> new IllegalArgumentException("type: expected FLOAT or DOUBLE, got " + type));
        List<String> fallBacks = new ArrayList<>();
        for (KernelsProvider p : providers) {
            String why = p.priority() > chosen.priority() ? p.unavailableBecause(type) : null;
            if (why != null) {
                fallBacks.add(p.name() + " (" + why + ")");
            }
        }
        return new KernelChoice(type, chosen, List.copyOf(fallBacks));
    }

    /** @return the log line: kernels, their platform, ND4J's version and backend, and any fall-back */
    String describe() {
        String line = String.format(
                Locale.ROOT, "%s kernels: %s on ND4J %s, %s", type, provider.describe(), nd4jVersion(), backend());
        return fallBacks.isEmpty() ? line : line + "; not used: " + String.join(", ", fallBacks);
    }

    /** Logs {@link #describe()} at INFO the first time for this type (at WARN when it is a fall-back). */
    void logOnce() {
        if (LOGGED.add(type)) {
            if (fallBacks.isEmpty()) {
                LOG.info("{}", describe());
            } else {
                LOG.warn("{}", describe());
            }
        }
    }

    /** @return ND4J's version, from nd4j-api's Maven metadata */
    private static String nd4jVersion() {
        try (InputStream in = Nd4j.class.getResourceAsStream("/META-INF/maven/org.nd4j/nd4j-api/pom.properties")) {
            if (in == null) {
                return "(version unknown)";
            }
            Properties p = new Properties();
            p.load(in);
            return p.getProperty("version", "(version unknown)");
        } catch (IOException e) {
            return "(version unknown: " + e.getMessage() + ")";
        }
    }

    /** @return the backend's class and the features its native build lists (HAVE_ONEDNN, HAVE_OPENBLAS, ...) */
    private static String backend() {
        var b = Nd4j.getBackend();
        String info;
        try {
            info = b.buildInfo();
        } catch (RuntimeException | LinkageError e) {
            info = "";
        }
        List<String> have = info == null
                ? List.of()
                : info.lines()
                        .map(String::trim)
                        .filter(l -> l.startsWith("HAVE_"))
                        .map(l -> l.substring("HAVE_".length()).toLowerCase(Locale.ROOT))
                        .collect(Collectors.toList());
        return b.getClass().getSimpleName() + (have.isEmpty() ? "" : " (" + String.join(", ", have) + ")");
    }
}
