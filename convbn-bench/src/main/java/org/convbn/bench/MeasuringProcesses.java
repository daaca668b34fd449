package org.convbn.bench;

import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Option;

/**
 * The options of the processes a measuring command starts: the JVM that runs convbn's steps ({@code --heap},
 * {@code --jvm-arg}) and the Python interpreters tried for the PyTorch peer ({@code --python}).
 */
final class MeasuringProcesses {
    @Option(names = "--heap", description = "Java heap of each measuring JVM, -Xms = -Xmx (default: ${DEFAULT-VALUE})")
    String heap = "1g";

    @Option(
            names = "--jvm-arg",
            description = "extra argument for the measuring JVMs, repeatable, e.g. "
                    + "--jvm-arg=-Dconvbn.kernels=nd4j to run on ND4J's own kernels")
    List<String> jvmArgs = new ArrayList<>();

    @Option(
            names = "--python",
            split = ",",
            description = "python executables to try for --peer pytorch, in order " + "(default: ${DEFAULT-VALUE})")
    List<String> python = new ArrayList<>(List.of("/usr/bin/python3", "python3"));
}
