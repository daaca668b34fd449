package org.convbn.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The process's resident set size and its high-water mark, from Linux's /proc/self. ND4J's own counters miss
 * ordinary CPU allocations (libnd4j allocates them natively), so the kernel's count is the reliable one:
 * reset the high-water mark, run the step, read VmHWM and subtract the VmRSS before it.
 */
public final class MemoryProbe {
    private static final Path STATUS = Path.of("/proc/self/status");
    private static final Path CLEAR_REFS = Path.of("/proc/self/clear_refs");

    private MemoryProbe() {}

    /** @return true when /proc/self gives RSS figures and the high-water mark can be reset */
    public static boolean available() {
        return Files.isReadable(STATUS) && Files.isWritable(CLEAR_REFS);
    }

    /** @return VmRSS in bytes */
    public static long residentBytes() {
        return field("VmRSS:");
    }

    /** @return VmHWM (peak VmRSS since the last reset) in bytes */
    public static long highWaterBytes() {
        return field("VmHWM:");
    }

    /** Resets VmHWM to the current VmRSS ("5" written to clear_refs). */
    public static void resetHighWater() {
        try {
            Files.writeString(CLEAR_REFS, "5", StandardCharsets.US_ASCII);
        } catch (IOException e) {
            throw new IllegalStateException("cannot reset the RSS high-water mark via " + CLEAR_REFS + ": " + e, e);
        }
    }

    private static long field(String name) {
        try {
            for (String line : Files.readAllLines(STATUS, StandardCharsets.US_ASCII)) {
                if (line.startsWith(name)) {
                    String[] parts = line.substring(name.length()).trim().split("\\s+");
                    return Long.parseLong(parts[0]) * 1024; // kB
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + STATUS + ": " + e, e);
        }
        throw new IllegalStateException(STATUS + " has no " + name + " line");
    }
}
