package org.convbn.dl4j;

import java.util.List;
import net.jcip.annotations.Immutable;
import org.convbn.core.Mode;

/**
 * What {@link ConvBNConverter} did to a network: the Conv -> BN pairs it fused and every ConvolutionLayer or
 * BatchNormalization it left unchanged, with the reason.
 *
 * @param mode the mode the fused layers run in
 * @param converted the fused pairs, in network order
 * @param leftAlone the conv and BN layers left as they were, in network order
 */
@Immutable
public record ConversionReport(Mode mode, List<Converted> converted, List<LeftAlone> leftAlone) {

    public ConversionReport {
        converted = List.copyOf(converted);
        leftAlone = List.copyOf(leftAlone);
    }

    /**
     * One fused pair.
     *
     * @param conv the ConvolutionLayer's name (a layer index in a MultiLayerNetwork)
     * @param batchNorm the BatchNormalization's name or index
     * @param layer the ConvBN layer's name (the conv's) or index
     * @param training how the pair trains after conversion (as it did before)
     */
    @Immutable
    public record Converted(String conv, String batchNorm, String layer, String training) {}

    /**
     * A layer left unchanged.
     *
     * @param layer its name or index
     * @param reason why it was not fused
     */
    @Immutable
    public record LeftAlone(String layer, String reason) {}

    /** @return a multi-line summary: counts, then one line per pair and per layer left alone */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder();
        sb.append("Fused ")
                .append(converted.size())
                .append(" Conv -> BN pair(s) into ConvBN layers in ")
                .append(mode)
                .append("; left ")
                .append(leftAlone.size())
                .append(" conv/BN layer(s) alone.\n");
        for (Converted c : converted) {
            sb.append("  fused  ")
                    .append(c.conv())
                    .append(" + ")
                    .append(c.batchNorm())
                    .append(" -> ")
                    .append(c.layer())
                    .append(" (")
                    .append(c.training())
                    .append(")\n");
        }
        for (LeftAlone l : leftAlone) {
            sb.append("  kept   ")
                    .append(l.layer())
                    .append(": ")
                    .append(l.reason())
                    .append('\n');
        }
        return sb.toString();
    }
}
