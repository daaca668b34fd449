package org.convbn.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.convbn.core.Mode;
import org.convbn.nd4j.Optimizer;
import org.convbn.nd4j.kernel.PooledArena;
import org.convbn.train.TrainingStep;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Nesterovs;

/**
 * The network's arena owns every array of a step: nothing of a forward stays held after {@code clearSaved()} or
 * {@code setMode()}, a step gives back all it took, and from the second step on a step allocates nothing new.
 * {@link #check} runs the same on any kernel set; for kernels whose every buffer comes from the arena (oneDNN's) it
 * also checks that steps touch no fresh pages and the resident memory stays flat. ND4J's own kernels cannot promise
 * that: libnd4j's conv ops allocate temporaries of their own (im2col columns, oneDNN reorders) through malloc.
 */
public class NetworkMemoryTest {
    /** Steps after the warm-up over which memory must stay flat. */
    static final int STEPS = 20;
    /**
     * Resident memory may grow over those steps by at most this share of what the arena reserves: the JIT compiler,
     * the garbage collector and ND4J's small per-op allocations move the RSS by a few MiB; a step that allocated its
     * arrays afresh would grow it by the whole reserve (the memory is freed to glibc, not to the OS, in between).
     */
    static final double RSS_GROWTH_SHARE = 0.25;

    /**
     * Fresh pages (minor faults) the steps after the warm-up may touch in all, as a share of the pages the arena
     * reserves: the JIT compiler, the class loader and ND4J's small per-op arrays touch some; one step that allocated
     * its arrays afresh would touch them all.
     */
    static final double FRESH_PAGE_SHARE = 0.25;

    @Test
    void nd4jKernels() throws IOException {
        check(DataType.FLOAT, false);
    }

    /**
     * Runs every check on a ResNet-18 built on the kernels {@link ResNet.Builder#build()} picks for {@code type}.
     *
     * @param pagesToo also check fresh pages and resident memory (for kernels that allocate nothing themselves)
     */
    public static void check(DataType type, boolean pagesToo) throws IOException {
        INDArray x = Nd4j.rand(type, 2, 3, 48, 48).subi(0.5);
        int[] labels = {1, 3};
        for (Mode mode : Mode.values()) {
            try (ResNet net = ResNet.builder(ResNet.Variant.RESNET18)
                    .classes(5)
                    .dataType(type)
                    .seed(1)
                    .mode(mode)
                    .build()) {
                PooledArena arena = net.arena();
                long trainStatistics = mode == Mode.TRAIN ? batchStatisticsBytes(net) : 0;
                net.arena().release(net.forward(x));
                net.clearSaved();
                assertEquals(trainStatistics, arena.stats().leasedBytes(), mode + ": held after clearSaved()");
                net.forward(x); // logits dropped by the caller on purpose: only the network's own arrays are checked
                long logits = aligned(2L * 5 * type.width());
                net.setMode(mode == Mode.DEPLOY ? Mode.DEPLOY : Mode.EVAL);
                assertEquals(trainStatistics + logits, arena.stats().leasedBytes(), mode + ": held after setMode()");
                net.setMode(mode);
                Optimizer optimizer = new Optimizer(new Nesterovs(1e-3, 0.9));
                TrainingStep.run(net, x, labels, optimizer);
                assertEquals(trainStatistics + logits, arena.stats().leasedBytes(), mode + ": held after a step");
            }
        }
        try (ResNet net = ResNet.builder(ResNet.Variant.RESNET18)
                .classes(5)
                .dataType(type)
                .seed(1)
                .mode(Mode.TUNE)
                .build()) {
            Optimizer optimizer = new Optimizer(new Nesterovs(1e-3, 0.9));
            INDArray batch = Nd4j.rand(type, 4, 3, 64, 64).subi(0.5);
            int[] four = {0, 1, 2, 3};
            for (int i = 0; i < 2; i++) {
                TrainingStep.run(net, batch, four, optimizer);
            }
            PooledArena.Stats before = net.arena().stats();
            long rss = residentBytes();
            long faults = minorFaults();
            for (int i = 0; i < STEPS; i++) {
                TrainingStep.run(net, batch, four, optimizer);
            }
            long fresh = minorFaults() - faults;
            long growth = residentBytes() - rss;
            PooledArena.Stats after = net.arena().stats();
            assertEquals(before.buffersCreated(), after.buffersCreated(), "chunks created after the warm-up");
            assertEquals(before.reservedBytes(), after.reservedBytes(), "bytes reserved after the warm-up");
            if (pagesToo) {
                long pages = before.touchedBytes() / PAGE;
                assertTrue(
                        fresh <= FRESH_PAGE_SHARE * pages,
                        () -> fresh + " fresh pages touched over " + STEPS + " steps; the arena reserves " + pages);
                assertTrue(
                        growth <= RSS_GROWTH_SHARE * before.touchedBytes(),
                        () -> "resident memory grew by " + growth + " bytes over " + STEPS + " steps; the arena holds "
                                + before.touchedBytes());
            }
        }
    }

    /** Bytes per page. */
    private static final long PAGE = 4096;

    /** @return the process's minor page faults so far (field 10 of /proc/self/stat) */
    private static long minorFaults() throws IOException {
        String stat = Files.readString(Path.of("/proc/self/stat"));
        String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(fields[7]);
    }

    /** Bytes of the batch mean and variance each TRAIN block keeps for a replay. */
    private static long batchStatisticsBytes(ResNet net) {
        return net.blocks().stream()
                .mapToLong(b -> 2
                        * aligned((long) b.block().config().channels()
                                * b.block().dataType().width()))
                .sum();
    }

    /** @return bytes as the arena leases them: in blocks aligned to 64 bytes */
    private static long aligned(long bytes) {
        return (bytes + 63) / 64 * 64;
    }

    private static long residentBytes() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        }
        throw new IllegalStateException("/proc/self/status has no VmRSS line");
    }
}
