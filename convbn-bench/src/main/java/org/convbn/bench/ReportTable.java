package org.convbn.bench;

import java.util.Locale;
import java.util.Optional;

/** The report as text: one row per mode, then the ratios. */
final class ReportTable {
    private ReportTable() {
    }

    static String render(Report r) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%s batch %d %dx%d, %d threads, %s, %s%n", r.model(), r.batch(),
                r.resolution(), r.resolution(), r.threads(), r.backend(), r.machine()));
        sb.append(String.format(Locale.ROOT, "%-29s %12s %10s %10s %14s %16s%n", "mode", "step ms med", "min", "max",
                "peak MiB", "retained MiB"));
        for (ModeResult m : r.modes()) {
            sb.append(String.format(Locale.ROOT, "%-29s %12.1f %10.1f %10.1f %14.1f %16s%n", m.mode(), m.stepMsMedian(),
                    m.stepMsMin(), m.stepMsMax(), mib(m.peakBytes()),
                    m.retainedBytes() < 0 ? "-" : String.format(Locale.ROOT, "%.1f", mib(m.retainedBytes()))));
        }
        for (String tuneRow : new String[] {"TUNE", "TUNE_KEEP", "TUNE_REVERSIBLE", "TUNE_KEEP_REVERSIBLE",
            "EVAL_REVERSIBLE"}) {
            find(r, tuneRow).ifPresent(tune -> {
                find(r, "EVAL").ifPresent(eval -> sb.append(ratios(tuneRow + "/EVAL", tune, eval)));
                find(r, "DEPLOY").ifPresent(deploy -> sb.append(ratios(tuneRow + "/DEPLOY", tune, deploy)));
            });
        }
        for (String converted : new String[] {"DL4J_CONVERTED_EVAL", "DL4J_CONVERTED_TUNE",
            "DL4J_CONVERTED_TUNE_KEEP"}) {
            find(r, converted).ifPresent(c -> find(r, "DL4J_FROZEN_BN")
                    .ifPresent(d -> sb.append(ratios(converted + "/DL4J_FROZEN_BN", c, d))));
        }
        for (String rev : new String[] {"TUNE_REVERSIBLE", "TUNE_KEEP_REVERSIBLE"}) {
            find(r, rev).ifPresent(rr -> find(r, "TUNE").ifPresent(tune -> sb.append(ratios(rev + "/TUNE", rr, tune))));
        }
        return sb.toString();
    }

    private static String ratios(String name, ModeResult a, ModeResult b) {
        String retained = a.retainedBytes() < 0 || b.retainedBytes() < 0 ? ""
                : String.format(Locale.ROOT, ", retained %.3f", (double) a.retainedBytes() / b.retainedBytes());
        return String.format(Locale.ROOT, "%-46s time %.3f, peak memory %.3f%s%n", name,
                a.stepMsMedian() / b.stepMsMedian(), (double) a.peakBytes() / b.peakBytes(), retained);
    }

    static Optional<ModeResult> find(Report r, String mode) {
        return r.modes().stream().filter(m -> m.mode().equals(mode)).findFirst();
    }

    private static double mib(long bytes) {
        return bytes / 1048576.0;
    }
}
