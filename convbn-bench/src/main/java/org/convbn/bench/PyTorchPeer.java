package org.convbn.bench;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.convbn.core.Mode;

/**
 * Runs the same fine-tuning step in PyTorch (the project's torch_step.py, shipped in this jar) with a python3 that
 * has torch and torchvision: Debian's python3-torch and python3-torchvision, for instance.
 */
final class PyTorchPeer {
    private static final String SCRIPT = "torch_step.py";
    /** How long a python3 may take to import torch when probed. */
    private static final long PROBE_SECONDS = 120;

    private final String python;
    private final Path script;

    private PyTorchPeer(String python, Path script) {
        this.python = python;
        this.script = script;
    }

    /**
     * @param candidates python executables to try in order (the first that imports torch and torchvision wins)
     * @return the peer, or empty (with the reason printed) when no candidate has torch
     */
    static Optional<PyTorchPeer> find(List<String> candidates) throws IOException, InterruptedException {
        for (String python : candidates) {
            if (imports(python)) {
                Path script = Files.createTempFile("convbn-torch-step", ".py");
                script.toFile().deleteOnExit();
                try (InputStream in = PyTorchPeer.class.getResourceAsStream(SCRIPT)) {
                    if (in == null) {
                        throw new IllegalStateException(SCRIPT + ": missing from the jar");
                    }
                    Files.copy(in, script, StandardCopyOption.REPLACE_EXISTING);
                }
                return Optional.of(new PyTorchPeer(python, script));
            }
        }
        return Optional.empty();
    }

    private static boolean imports(String python) throws InterruptedException {
        try {
            Process p = new ProcessBuilder(python, "-c", "import torch, torchvision")
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .start();
            if (!p.waitFor(PROBE_SECONDS, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return false;
            }
            return p.exitValue() == 0;
        } catch (IOException e) {
            return false; // no such executable
        }
    }

    /** @return the python executable in use */
    String python() {
        return python;
    }

    /** @return the peer's name of a convbn mode, e.g. PYTORCH_TUNE */
    static String name(Mode mode) {
        return "PYTORCH_" + mode.name();
    }

    /**
     * Runs one mode in a fresh python process.
     *
     * @param mmapThreshold MALLOC_MMAP_THRESHOLD_ for the process, or 0 for glibc's default
     * @param isa the oneDNN instruction-set cap, set in the process's environment as for convbn's
     * @param bf16 whether the forward and the loss run under {@code torch.autocast("cpu", dtype=torch.bfloat16)}
     */
    ModeResult measure(
            Mode mode,
            Model model,
            int batch,
            int resolution,
            int warmup,
            int steps,
            int threads,
            long mmapThreshold,
            IsaOption isa,
            boolean bf16)
            throws IOException, InterruptedException {
        Path result = Files.createTempFile("convbn-" + name(mode), ".json");
        try {
            ProcessBuilder pb = new ProcessBuilder(
                            command(mode, model, batch, resolution, warmup, steps, threads, result, bf16))
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .redirectError(ProcessBuilder.Redirect.INHERIT);
            ReportCommand.setMmapThreshold(pb, mmapThreshold);
            isa.apply(pb.environment());
            int rc = pb.start().waitFor();
            if (rc != 0) {
                throw new IllegalStateException("measuring " + name(mode) + " failed: " + python + " exited with " + rc
                        + " (its output is above)");
            }
            return Json.read(result, ModeResult.class);
        } finally {
            Files.deleteIfExists(result);
        }
    }

    /** @return the command line that runs one mode and writes its result to {@code result} */
    List<String> command(
            Mode mode,
            Model model,
            int batch,
            int resolution,
            int warmup,
            int steps,
            int threads,
            Path result,
            boolean bf16) {
        return new ArrayList<>(List.of(
                python,
                script.toString(),
                mode.name().toLowerCase(Locale.ROOT),
                model.torchvisionName().orElseThrow(),
                String.valueOf(batch),
                String.valueOf(resolution),
                String.valueOf(warmup),
                String.valueOf(steps),
                String.valueOf(threads),
                result.toString(),
                bf16 ? "bf16" : "none"));
    }

    @Override
    public String toString() {
        return "PyTorch via " + python;
    }
}
