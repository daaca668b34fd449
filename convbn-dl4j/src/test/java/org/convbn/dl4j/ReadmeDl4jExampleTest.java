package org.convbn.dl4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.convbn.core.Mode;
import org.convbn.testkit.conformance.ReadmeExample;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.conf.preprocessor.CnnToFeedForwardPreProcessor;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.transferlearning.FineTuneConfiguration;
import org.deeplearning4j.nn.transferlearning.TransferLearning;
import org.deeplearning4j.zoo.model.ResNet50;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Nesterovs;
import org.nd4j.linalg.lossfunctions.LossFunctions;

/** The "Using with DL4J" example of README.md, compiled and run on random data; the README must show these lines. */
class ReadmeDl4jExampleTest {

    @Test
    void transferLearningThenConvertThenFit() {
        ComputationGraph pretrained =
                ResNet50.builder().numClasses(1000).build().init(); // or a trained model
        Dl4jFixtures.heScaleWeights(pretrained.getLayers(), 1);
        INDArray images = Nd4j.rand(DataType.FLOAT, 2, 3, 224, 224);
        INDArray labels = Nd4j.zeros(DataType.FLOAT, 2, 5);
        labels.putScalar(0, 1, 1.0);
        labels.putScalar(1, 3, 1.0);
        DataSet batch = new DataSet(images, labels);

        // spotless:off (the README shows these lines as they are)
        // README-BEGIN
        ComputationGraph transfer = new TransferLearning.GraphBuilder(pretrained)
                .fineTuneConfiguration(new FineTuneConfiguration.Builder().updater(new Nesterovs(1e-3, 0.9)).build())
                .setFeatureExtractor("res3d_branch")          // stem, stages 2 and 3 frozen
                .removeVertexAndConnections("output")          // a new head for 5 classes
                .addLayer("output", new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nIn(2048).nOut(5)
                        .activation(Activation.SOFTMAX).build(), new CnnToFeedForwardPreProcessor(1, 1, 2048), "avgpool")
                .setOutputs("output")
                .build();
        ConvBNConverter.Conversion<ComputationGraph> tuned = ConvBNConverter.convert(transfer); // TUNE
        System.out.println(tuned.report());
        ComputationGraph net = tuned.network();
        net.fit(batch);
        // README-END
        // spotless:on

        ConversionReport report = tuned.report();
        assertEquals(53, report.converted().size(), report.toString());
        long frozen = report.converted().stream()
                .filter(c -> c.training().equals("FrozenLayer"))
                .count();
        assertEquals(
                1 + (3 * 3 + 1) + (4 * 3 + 1),
                frozen,
                "the stem, then 3 units of stage 2 and 4 of stage 3 with "
                        + "3 pairs each, plus each stage's shortcut pair");
        assertTrue(ConvBNLayers.of(net).stream().allMatch(l -> l.mode() == Mode.TUNE));
        assertTrue(Double.isFinite(net.score()), "score " + net.score());
    }

    @Test
    void readmeShowsThisExample() throws IOException {
        assertEquals(
                List.of(),
                ReadmeExample.missingLines(
                        Path.of("src/test/java/org/convbn/dl4j/ReadmeDl4jExampleTest.java"), Path.of("../README.md")),
                "README.md lacks these example lines");
    }
}
