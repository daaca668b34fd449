package org.convbn.bench;

import java.util.List;

/**
 * The whole report, as written to results.json.
 *
 * @param model "resnet18" or "resnet50"
 * @param batch batch size
 * @param resolution input height and width
 * @param threads ND4J's maximum thread count in the measuring JVMs (the first mode's)
 * @param backend the ND4J backend and its build (e.g. "CPU nd4j-native avx2")
 * @param dataType FLOAT or DOUBLE
 * @param warmupSteps steps run before measuring
 * @param machine OS, architecture and processor count
 * @param modes one entry per measured mode
 */
public record Report(String model, int batch, int resolution, int threads, String backend, String dataType,
                     int warmupSteps, String machine, List<ModeResult> modes) {
}
