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
        sb.append(String.format(Locale.ROOT, "%-25s %12s %10s %10s %14s %16s%n", "mode", "step ms med", "min", "max",
                "peak MiB", "retained MiB"));
        for (ModeResult m : r.modes()) {
            sb.append(String.format(Locale.ROOT, "%-25s %12.1f %10.1f %10.1f %14.1f %16.1f%n", m.mode(), m.stepMsMedian(),
                    m.stepMsMin(), m.stepMsMax(), mib(m.peakBytes()), mib(m.retainedBytes())));
        }
        for (String tuneRow : new String[] {"TUNE", "TUNE_RECOMPUTE", "TUNE_REVERSIBLE", "TUNE_RECOMPUTE_REVERSIBLE",
            "EVAL_REVERSIBLE"}) {
            find(r, tuneRow).ifPresent(tune -> {
                find(r, "EVAL").ifPresent(eval -> sb.append(ratios(tuneRow + "/EVAL", tune, eval)));
                find(r, "DEPLOY").ifPresent(deploy -> sb.append(ratios(tuneRow + "/DEPLOY", tune, deploy)));
            });
        }
        for (String rev : new String[] {"TUNE_REVERSIBLE", "TUNE_RECOMPUTE_REVERSIBLE"}) {
            find(r, rev).ifPresent(rr -> find(r, "TUNE").ifPresent(tune -> sb.append(ratios(rev + "/TUNE", rr, tune))));
        }
        return sb.toString();
    }

    private static String ratios(String name, ModeResult a, ModeResult b) {
        return String.format(Locale.ROOT, "%-32s time %.3f, peak memory %.3f, retained %.3f%n", name,
                a.stepMsMedian() / b.stepMsMedian(), (double) a.peakBytes() / b.peakBytes(),
                (double) a.retainedBytes() / b.retainedBytes());
    }

    static Optional<ModeResult> find(Report r, String mode) {
        return r.modes().stream().filter(m -> m.mode().equals(mode)).findFirst();
    }

    private static double mib(long bytes) {
        return bytes / 1048576.0;
    }
}
