package org.convbn.testkit.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README example check finds the lines a README lacks, skips the test's bookkeeping, and needs its markers. */
class ReadmeExampleTest {
    @TempDir
    Path dir;

    @Test
    void listsTheMarkedLinesTheReadmeLacks() throws IOException {
        Path source = Files.writeString(
                dir.resolve("T.java"),
                String.join(
                        "\n",
                        "class T {",
                        "    void t() {",
                        "        // README-BEGIN",
                        "        int a = 1;",
                        "        record(a);",
                        "        int b = a + 1;",
                        "        // README-END",
                        "    }",
                        "}"));
        Path readme = Files.writeString(dir.resolve("README.md"), "```\nint a = 1;\n```\n");
        assertEquals(List.of("int b = a + 1;"), ReadmeExample.missingLines(source, readme, "record("));
        assertEquals(List.of("record(a);", "int b = a + 1;"), ReadmeExample.missingLines(source, readme));
        Path unmarked = Files.writeString(dir.resolve("U.java"), "class U {}");
        assertThrows(IllegalArgumentException.class, () -> ReadmeExample.missingLines(unmarked, readme));
    }
}
