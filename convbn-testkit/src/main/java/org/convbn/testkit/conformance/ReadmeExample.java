package org.convbn.testkit.conformance;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * Keeps a README's code example and the test that compiles and runs it the same: the test marks its example lines
 * with {@code // README-BEGIN} and {@code // README-END} comments, and every marked line (its 8-space method-body
 * indent removed) must appear in the README.
 */
public final class ReadmeExample {
    private static final String BEGIN = "// README-BEGIN";
    private static final String END = "        // README-END";

    private ReadmeExample() {}

    /**
     * @param testSource the test's source file
     * @param readme the README
     * @param skippedPrefixes lines starting with one of these (after stripping) are the test's own bookkeeping
     * @return the marked lines the README lacks, in order (empty when it shows them all)
     * @throws IOException if a file cannot be read
     * @throws IllegalArgumentException if the markers are missing
     */
    public static List<String> missingLines(Path testSource, Path readme, String... skippedPrefixes)
            throws IOException {
        String source = Files.readString(testSource);
        int begin = source.indexOf(BEGIN);
        int end = source.indexOf(END);
        if (begin < 0 || end < begin) {
            throw new IllegalArgumentException("testSource: expected the markers " + BEGIN + " and README-END in "
                    + testSource + ", got none in that order");
        }
        String text = Files.readString(readme);
        return source.substring(begin + BEGIN.length(), end)
                .lines()
                .map(l -> l.length() >= 8 ? l.substring(8) : l.strip())
                .filter(l -> !l.isEmpty())
                .filter(l -> Arrays.stream(skippedPrefixes).noneMatch(l.strip()::startsWith))
                .filter(l -> !text.contains(l))
                .toList();
    }
}
