package org.convbn.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The machine a measurement ran on, as the report and the profile name it: the CPU model, its cores, and the vector
 * extensions that decide which kernels oneDNN has (AVX2, AVX-512 and its bfloat16 extension).
 *
 * @param cpu the CPU model from /proc/cpuinfo, e.g. "AMD EPYC", or the OS architecture where there is none
 * @param cores processors available to the JVM
 * @param vectorFlags the CPU's flags among avx2, avx512f, avx512_vnni, avx512_bf16, amx_tile
 */
record Machine(String cpu, int cores, List<String> vectorFlags) {
    private static final List<String> FLAGS = List.of("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile");

    /** @return this machine */
    static Machine current() {
        String model = null;
        List<String> flags = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                int colon = line.indexOf(':');
                if (colon < 0) {
                    continue;
                }
                String key = line.substring(0, colon).trim();
                String value = line.substring(colon + 1).trim();
                if (key.equals("model name") && model == null) {
                    model = value;
                } else if (key.equals("flags") && flags.isEmpty()) {
                    Set<String> present = Set.of(value.split("\\s+"));
                    FLAGS.stream().filter(present::contains).forEach(flags::add);
                }
            }
        } catch (IOException e) {
            // no /proc: the architecture stands in for the model
        }
        return new Machine(
                model != null ? model : System.getProperty("os.arch"),
                Runtime.getRuntime().availableProcessors(),
                flags);
    }

    /** @return e.g. "AMD EPYC, 2 cores, avx2 (no avx512f), Linux amd64" */
    String describe() {
        String vector = vectorFlags.isEmpty()
                ? "no avx2"
                : String.join(" ", vectorFlags) + (vectorFlags.contains("avx512f") ? "" : " (no avx512f)");
        return cpu + ", " + cores + " cores, " + vector + ", " + System.getProperty("os.name") + " "
                + System.getProperty("os.arch");
    }
}
