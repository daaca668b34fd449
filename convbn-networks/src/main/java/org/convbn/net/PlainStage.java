package org.convbn.net;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Units run one after the other, each keeping what its blocks need for backward. */
final class PlainStage implements Stage {
    private final List<ResidualUnit> units;

    PlainStage(List<ResidualUnit> units) {
        this.units = List.copyOf(units);
    }

    @Override
    public INDArray forward(INDArray x) {
        INDArray h = x;
        for (ResidualUnit u : units) {
            h = u.forward(h);
        }
        return h;
    }

    @Override
    public INDArray backward(INDArray g, GradientSink sink) {
        INDArray d = g;
        for (int i = units.size() - 1; i >= 0; i--) {
            d = units.get(i).backwardConsuming(d, sink);
        }
        return d;
    }

    @Override
    public void backwardWithoutInputGradient(INDArray g, GradientSink sink) {
        INDArray d = g;
        for (int i = units.size() - 1; i > 0; i--) {
            d = units.get(i).backwardConsuming(d, sink);
        }
        units.get(0).backwardConsumingWithoutInputGradient(d, sink);
    }

    @Override
    public void clearSaved() {
        units.forEach(ResidualUnit::clearSaved);
    }

    @Override
    public List<ResidualUnit> units() {
        return units;
    }

    @Override
    public List<NamedBlock> blocks() {
        List<NamedBlock> all = new ArrayList<>();
        units.forEach(u -> all.addAll(u.blocks()));
        return Collections.unmodifiableList(all);
    }

    @Override
    public void collectRetained(List<INDArray> into) {
        units.forEach(u -> u.collectRetained(into));
    }
}
