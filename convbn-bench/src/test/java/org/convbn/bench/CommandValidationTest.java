package org.convbn.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** Commands refuse bad option combinations by name (exit 2) before measuring anything; cost counts. */
class CommandValidationTest {

    private static String run(int expectedExit, String... args) {
        CommandLine cli = BenchMain.commandLine();
        StringWriter out = new StringWriter();
        cli.setErr(new PrintWriter(out));
        cli.setOut(new PrintWriter(out));
        assertEquals(expectedExit, cli.execute(args), out.toString());
        return out.toString();
    }

    @Test
    void theSummaryNamesTheFirstTenSkippedImagesAndCountsTheRest() {
        assertEquals("", FineTuneCommand.skippedSummary(List.of()));
        List<String> skipped = IntStream.range(0, 13)
                .mapToObj(i -> "data/a/" + i + ".png: cut short")
                .toList();
        String s = FineTuneCommand.skippedSummary(skipped);
        assertTrue(s.startsWith("skipped 13 unreadable image files:\n  data/a/0.png: cut short\n"), s);
        assertTrue(s.contains("  data/a/9.png: cut short\n  and 3 more\n") && !s.contains("10.png"), s);
    }

    @Test
    void profileCountsTheDepthwiseCorrelationAsWeightGradientTime() {
        String correlation =
                "onednn_verbose,exec,cpu,convolution,jit_dw:avx2,forward_inference,src_f32::blocked:aBcd8b:f0"
                        + ",attr-scratchpad:user ,alg:convolution_direct,g9216mb1_ic9216oc9216_ih7oh5kh7sh1dh0ph2_iw7ow5kw7sw1dw0pw2"
                        + ",0.31";
        String forward = "onednn_verbose,exec,cpu,convolution,jit_dw:avx2,forward_training,src_f32::blocked:aBcd8b:f0"
                + ",attr-scratchpad:user ,alg:convolution_direct,g1152mb8_ic1152oc1152_ih7oh7kh5sh1dh0ph2_iw7ow7kw5sw1dw0pw2"
                + ",0.52";
        assertEquals("conv backward weights", ProfileCommand.kind(correlation.split(","), 8));
        assertEquals("conv forward", ProfileCommand.kind(forward.split(","), 8));
        assertEquals("conv forward", ProfileCommand.kind(correlation.split(","), 1)); // a batch of one is itself
    }

    @Test
    void dl4jVariantsNeedTheZooResNet50() {
        String err = run(2, "report", "--model", "resnet18", "--dl4j", "DL4J_CONVERTED_TUNE");
        assertTrue(err.contains("--dl4j") && err.contains("resnet18"), err);
    }

    @Test
    void bfloat16PrecisionsAreCheckedBeforeAnythingRuns() {
        String err = run(2, "report", "--model", "resnet18", "--precision", "BF16_MIXED");
        assertTrue(err.contains("BF16_MIXED") && err.contains("isa") && err.contains("BF16_EMULATED"), err);
        err = run(2, "profile", "--model", "resnet18", "--precision", "BF16_MIXED");
        assertTrue(err.contains("BF16_MIXED") && err.contains("isa"), err);
        err = run(2, "report", "--model", "resnet18", "--precision", "FULL,FULL");
        assertTrue(err.contains("--precision: expected distinct"), err);
        err = run(2, "report", "--model", "efficientnet_b0_proxy", "--precision", "BF16_EMULATED");
        assertTrue(err.contains("--precision") && err.contains("efficientnet_b0_proxy"), err);
        err = run(2, "measure", "--dl4j", "DL4J_FROZEN_BN", "--precision", "bf16_emulated", "--result", "unused.json");
        assertTrue(err.contains("--precision: DL4J"), err);
    }

    @Test
    void measureNeedsExactlyOneVariant() {
        String err = run(2, "measure", "--result", "unused.json");
        assertTrue(err.contains("--mode, --dl4j") && err.contains("neither"), err);
        err = run(2, "measure", "--mode", "TUNE", "--dl4j", "DL4J_FROZEN_BN", "--result", "unused.json");
        assertTrue(err.contains("both"), err);
    }

    @Test
    void costRefusesAGroupSizeThatDoesNotDivide() {
        String err = run(2, "cost", "--model", "resnet18", "--group-size", "5");
        assertTrue(err.contains("groupSize") && err.contains("5"), err);
    }

    @Test
    void reversibleStagesNeedAResNet() {
        String err = run(2, "report", "--model", "efficientnet_b0", "--reversible");
        assertTrue(err.contains("--reversible") && err.contains("efficientnet_b0"), err);
    }

    @Test
    void costCountsEveryEfficientNetVariant() {
        run(0, "cost", "--model", "efficientnet_b0");
        run(0, "cost", "--model", "efficientnet_b0_proxy", "--blocks");
        String err = run(2, "cost", "--model", "efficientnet_b0", "--group-size", "5");
        assertTrue(err.contains("groupSize") && err.contains("5"), err);
    }

    /** The networks with their own grouped convs are counted as they are, whatever --group-size says. */
    @Test
    void costCountsTheMobileNetsAndRegNet() {
        run(0, "cost", "--model", "mobilenet_v2");
        run(0, "cost", "--model", "mobilenet_v3_large", "--blocks");
        run(0, "cost", "--model", "regnet_y_400mf", "--group-size", "8");
    }
}
