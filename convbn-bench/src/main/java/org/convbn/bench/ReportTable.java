package org.convbn.bench;

import java.util.Locale;
import java.util.Optional;

/** The report as text: one row per mode, then the ratios. */
final class ReportTable {
    private ReportTable() {}

    static String render(Report r) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(
                Locale.ROOT,
                "%s batch %d %dx%d, %d threads, %s, %s; %d round(s)%n",
                r.model(),
                r.batch(),
                r.resolution(),
                r.resolution(),
                r.threads(),
                r.backend(),
                r.machine(),
                r.rounds()));
        sb.append(String.format(
                Locale.ROOT,
                "%-29s %12s %21s %14s %16s%n",
                "mode",
                "step ms med",
                "round medians",
                "peak MiB",
                "retained MiB"));
        for (ModeResult m : r.modes()) {
            String spread = m.roundMediansMs() == null
                    ? "-"
                    : String.format(
                            Locale.ROOT,
                            "%.0f-%.0f",
                            m.roundMediansMs().stream()
                                    .mapToDouble(Double::doubleValue)
                                    .min()
                                    .orElse(Double.NaN),
                            m.roundMediansMs().stream()
                                    .mapToDouble(Double::doubleValue)
                                    .max()
                                    .orElse(Double.NaN));
            sb.append(String.format(
                    Locale.ROOT,
                    "%-29s %12.1f %21s %14.1f %16s%n",
                    m.mode(),
                    m.stepMsMedian(),
                    spread,
                    mib(m.peakBytes()),
                    m.retainedBytes() < 0 ? "-" : String.format(Locale.ROOT, "%.1f", mib(m.retainedBytes()))));
        }
        if (r.ratios() != null) {
            for (Report.Ratio q : r.ratios()) {
                sb.append(String.format(
                        Locale.ROOT,
                        "%-37s time %.3f (%.3f-%.3f), peak memory %.3f (%.3f-%.3f)%s%n",
                        q.name(),
                        q.timeMedian(),
                        q.timeMin(),
                        q.timeMax(),
                        q.peakMedian(),
                        q.peakMin(),
                        q.peakMax(),
                        Double.isNaN(q.retained()) ? "" : String.format(Locale.ROOT, ", retained %.3f", q.retained())));
            }
        }
        return sb.toString();
    }

    static Optional<ModeResult> find(Report r, String mode) {
        return r.modes().stream().filter(m -> m.mode().equals(mode)).findFirst();
    }

    private static double mib(long bytes) {
        return bytes / 1048576.0;
    }
}
