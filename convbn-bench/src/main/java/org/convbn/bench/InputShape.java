package org.convbn.bench;

import picocli.CommandLine.Option;

/**
 * {@code --batch} and {@code --resolution}: the shape of the images a command's steps take, {@code [batch, 3,
 * resolution, resolution]}. Each command gives its own defaults and the smallest resolution its networks accept.
 */
final class InputShape {
    @Option(names = "--batch", description = "images per step (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--resolution", description = "input height and width (default: ${DEFAULT-VALUE})")
    int resolution;

    private final int minResolution;
    private final String why;

    /**
     * @param batch the default batch size
     * @param resolution the default height and width
     * @param minResolution the smallest height and width the command accepts
     * @param why what sets that bound, shown when it is not met
     */
    InputShape(int batch, int resolution, int minResolution, String why) {
        this.batch = batch;
        this.resolution = resolution;
        this.minResolution = minResolution;
        this.why = why;
    }

    /**
     * @param batch the default batch size; 224x224 images by default, down to 32x32 (the zoo's five stride-2 stages)
     */
    InputShape(int batch) {
        this(batch, 224, 32, "five stride-2 stages");
    }

    /** The defaults of the measuring commands: batch 8 of 224x224 images, down to 32x32. */
    InputShape() {
        this(8);
    }

    /** @throws IllegalArgumentException naming --batch or --resolution when out of range */
    void validate() {
        if (batch < 1) {
            throw new IllegalArgumentException("--batch: expected >= 1, got " + batch);
        }
        if (resolution < minResolution) {
            throw new IllegalArgumentException(
                    "--resolution: expected >= " + minResolution + " (" + why + "), got " + resolution);
        }
    }
}
