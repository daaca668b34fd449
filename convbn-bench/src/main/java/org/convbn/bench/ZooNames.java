package org.convbn.bench;

import java.util.Iterator;
import org.convbn.net.Zoo;

/** The zoo's model names, as picocli's completion candidates of a {@code --model} option. */
final class ZooNames implements Iterable<String> {
    @Override
    public Iterator<String> iterator() {
        return Zoo.names().iterator();
    }
}
