package org.convbn.bench;

import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.util.Arrays;
import org.openjdk.jmh.Main;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of convbn-bench.jar. */
@Command(
        name = "convbn-bench",
        mixinStandardHelpOptions = true,
        description = {
            "Measure and compare the ConvBN modes.",
            "JMH benchmarks: convbn-bench jmh [JMH options] [regex], e.g. jmh -prof org.convbn.bench.jmh.PeakRssProfiler BlockStep"
        },
        subcommands = {
            ReportCommand.class,
            ProfileCommand.class,
            CompareCommand.class,
            MeasureCommand.class,
            ChartCommand.class,
            CostCommand.class,
            FineTuneCommand.class,
            ClassFoldersCommand.class,
            LowResolutionCommand.class,
            ParallelCommand.class
        })
public final class BenchMain {
    private BenchMain() {}

    /**
     * @return the command line, with bad input (named in the message) and what cannot run here (a precision without
     *         kernels) turned into "error: ..." and exit code 2
     */
    static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new BenchMain()).setCaseInsensitiveEnumValuesAllowed(true);
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            if (e instanceof NoSuchFileException) {
                cmd.getErr().println("error: no such file: " + e.getMessage());
                return 2;
            }
            if (e instanceof IllegalArgumentException
                    || e instanceof IllegalStateException
                    || e instanceof UnsupportedOperationException
                    || e instanceof IOException) {
                cmd.getErr().println("error: " + e.getMessage());
                return 2;
            }
            throw e;
        });
        return cli;
    }

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("jmh")) {
            // JMH's own command line: convbn-bench.jar jmh [JMH options] [benchmark regex]
            Main.main(Arrays.copyOfRange(args, 1, args.length));
            return;
        }
        System.setProperty("java.awt.headless", "true");
        CommandLine cli = commandLine();
        System.exit(cli.execute(args));
    }
}
