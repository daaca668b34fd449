package org.convbn.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;
import org.w3c.dom.Element;

/**
 * convbn-bom pins what the build itself builds and tests on: the same convbn version and the same ND4J, oneDNN,
 * OpenCL and SLF4J versions as convbn-parent, and the example project asks for this convbn version.
 */
class BomTest {
    private static final Path ROOT = Path.of(System.getProperty("user.dir")).getParent();
    private static final List<String> SHARED =
            List.of("nd4j.version", "dnnl.version", "opencl.version", "slf4j.version");

    private static Element project(String path) throws Exception {
        Document d = DocumentBuilderFactory.newInstance()
                .newDocumentBuilder()
                .parse(ROOT.resolve(path).toFile());
        return d.getDocumentElement();
    }

    private static String child(Element e, String name) {
        for (var n = e.getFirstChild(); n != null; n = n.getNextSibling()) {
            if (n instanceof Element c && c.getTagName().equals(name)) {
                return c.getTextContent().trim();
            }
        }
        throw new AssertionError("no <" + name + "> in <" + e.getTagName() + ">");
    }

    private static String property(Element project, String name) {
        var properties = (Element) project.getElementsByTagName("properties").item(0);
        return child(properties, name);
    }

    @Test
    void theBomPinsTheVersionsTheBuildUses() throws Exception {
        Element parent = project("pom.xml");
        Element bom = project("convbn-bom/pom.xml");
        Element example = project("examples/finetune/pom.xml");
        String version = child(parent, "version");
        assertEquals(version, child(bom, "version"), "convbn-bom's own version");
        assertEquals(version, property(bom, "convbn.version"), "the convbn modules the BOM pins");
        assertEquals(version, property(example, "convbn.version"), "the example's convbn version");
        for (String p : SHARED) {
            assertEquals(property(parent, p), property(bom, p), p);
        }
        String modules = parent.getElementsByTagName("modules").item(0).getTextContent();
        assertTrue(
                modules.contains("convbn-bom") && modules.contains("examples"),
                "the build installs the BOM and builds the examples: " + modules);
    }
}
