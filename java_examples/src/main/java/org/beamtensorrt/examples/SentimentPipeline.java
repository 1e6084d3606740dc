package org.beamtensorrt.examples;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.apache.beam.fn.harness.ExternalWorkerService;
import org.apache.beam.sdk.fn.server.GrpcFnServer;
import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.extensions.python.PythonExternalTransform;
import org.apache.beam.sdk.io.TextIO;
import org.apache.beam.sdk.options.Default;
import org.apache.beam.sdk.options.Description;
import org.apache.beam.sdk.options.PipelineOptions;
import org.apache.beam.sdk.options.PipelineOptionsFactory;
import org.apache.beam.sdk.options.PortablePipelineOptions;
import org.apache.beam.sdk.options.SdkHarnessOptions;
import org.apache.beam.sdk.options.Validation;
import org.apache.beam.sdk.schemas.Schema;
import org.apache.beam.sdk.transforms.Filter;
import org.apache.beam.sdk.transforms.MapElements;
import org.apache.beam.sdk.transforms.ToJson;
import org.apache.beam.sdk.values.PCollection;
import org.apache.beam.sdk.values.PCollectionTuple;
import org.apache.beam.sdk.values.POutput;
import org.apache.beam.sdk.values.Row;
import org.apache.beam.sdk.values.TupleTag;
import org.apache.beam.sdk.values.TypeDescriptors;

/**
 * Reads texts (one per line), classifies their sentiment with beam-tensorrt's ClassifyText, a
 * Python transform called cross-language through a running {@code beam-tensorrt serve}, and
 * writes JSON lines: {@code {"id": ..., "text": ..., "label": ..., "score": ...}}. Lines that
 * cannot be classified go, with the reason, to {@code --errors} when it is set.
 *
 * <pre>
 * beam-tensorrt serve --port 8097 &amp;
 * mvn -q compile exec:java -Dexec.args="--input=texts.txt --output=out/labels.jsonl \
 *     --expansionService=localhost:8097 --runner=PrismRunner --prismLocation=/path/to/prism"
 * </pre>
 */
public class SentimentPipeline {

  /** Options of this example, beside Beam's own (runner and so on). */
  public interface Options extends PipelineOptions {
    @Description("Input text file, one text per line")
    @Validation.Required
    String getInput();

    void setInput(String value);

    @Description("Output JSON-lines file")
    @Validation.Required
    String getOutput();

    void setOutput(String value);

    @Description("Optional JSON-lines file for rows that could not be classified")
    String getErrors();

    void setErrors(String value);

    @Description("Address of the beam-tensorrt expansion service")
    @Default.String("localhost:8097")
    String getExpansionService();

    void setExpansionService(String value);

    @Description(
        "The model ClassifyText runs: a named model, or an artifact path or URL the service's "
            + "workers can read (unset: ClassifyText's default model)")
    String getModel();

    void setModel(String value);

    @Description("Largest batch ClassifyText forms (unset: ClassifyText's default, 8,192 rows)")
    Integer getMaxBatchSize();

    void setMaxBatchSize(Integer value);

    @Description(
        "Serve this program's Java SDK workers from this process (an EXTERNAL environment on a free "
            + "local port) for portable runners on this machine, such as Prism's job server. Beam's "
            + "LOOPBACK cannot be used with cross-language transforms: they are expanded before the "
            + "runner assigns its address.")
    @Default.Boolean(false)
    Boolean getInProcessJavaWorkers();

    void setInProcessJavaWorkers(Boolean value);
  }

  static final Schema TEXT_ROW = Schema.builder().addStringField("id").addStringField("text").build();

  /** The classified schema: every input field plus label and score, as the service publishes. */
  static final Schema LABELLED_ROW =
      Schema.builder()
          .addStringField("id")
          .addStringField("text")
          .addStringField("label")
          .addDoubleField("score")
          .build();

  public static void main(String[] args) throws Exception {
    Options options = PipelineOptionsFactory.fromArgs(args).withValidation().as(Options.class);
    quietOrphanedChannelReports(options);
    if (options.getInProcessJavaWorkers()) {
      try (GrpcFnServer<ExternalWorkerService> workers = new ExternalWorkerService(options).start()) {
        PortablePipelineOptions portable = options.as(PortablePipelineOptions.class);
        portable.setDefaultEnvironmentType("EXTERNAL");
        portable.setEnvironmentOptions(
            List.of("external_service_address=" + workers.getApiServiceDescriptor().getUrl()));
        run(options);
      }
    } else {
      run(options);
    }
  }

  /** gRPC's report of a channel collected without shutdown, as vendored by Beam 2.65 (pom.xml). */
  static final String ORPHAN_REPORTS =
      "org.apache.beam.vendor.grpc.v1p69p0.io.grpc.internal.ManagedChannelOrphanWrapper";

  /**
   * Beam's in-process Java SDK harness (ExternalWorkerService, Beam 2.65) opens gRPC channels for each
   * worker and never shuts them down; when they are garbage collected, gRPC logs a 45-line SEVERE
   * report on a successful run. They are Beam's channels, not this pipeline's, and harmless at the
   * end of a job: drop exactly that report so that real errors stand out.
   *
   * <p>The harness replaces java.util.logging's configuration while it runs (it resets every level
   * and applies the SDK harness log level overrides) and re-reads the configuration file when it
   * stops, so the report's level is set in both: as an override, and in a configuration file that
   * also keeps the JDK's defaults.
   */
  static void quietOrphanedChannelReports(Options options) throws java.io.IOException {
    SdkHarnessOptions harness = options.as(SdkHarnessOptions.class);
    SdkHarnessOptions.SdkHarnessLogLevelOverrides overrides =
        harness.getSdkHarnessLogLevelOverrides() == null
            ? new SdkHarnessOptions.SdkHarnessLogLevelOverrides()
            : harness.getSdkHarnessLogLevelOverrides();
    harness.setSdkHarnessLogLevelOverrides(
        overrides.addOverrideForName(ORPHAN_REPORTS, SdkHarnessOptions.LogLevel.OFF));
    if (System.getProperty("java.util.logging.config.file") == null) {
      java.nio.file.Path config = java.nio.file.Files.createTempFile("sentiment-logging", ".properties");
      config.toFile().deleteOnExit();
      java.nio.file.Files.writeString(
          config,
          String.join(
              "\n",
              "handlers=java.util.logging.ConsoleHandler",
              ".level=INFO",
              "java.util.logging.ConsoleHandler.level=INFO",
              "java.util.logging.ConsoleHandler.formatter=java.util.logging.SimpleFormatter",
              ORPHAN_REPORTS + ".level=OFF",
              ""));
      System.setProperty("java.util.logging.config.file", config.toString());
      java.util.logging.LogManager.getLogManager().readConfiguration();
    }
  }

  static void run(Options options) {
    Pipeline pipeline = Pipeline.create(options);

    PCollection<Row> texts =
        pipeline
            .apply("Read", TextIO.read().from(options.getInput()))
            .apply("NonEmpty", Filter.by((String line) -> !line.isEmpty()))
            .apply(
                "ToRows",
                MapElements.into(TypeDescriptors.rows())
                    .via(
                        (String line) ->
                            Row.withSchema(TEXT_ROW)
                                .addValues(Integer.toHexString(line.hashCode()), line)
                                .build()))
            .setRowSchema(TEXT_ROW);

    boolean withErrors = options.getErrors() != null && !options.getErrors().isEmpty();
    PCollection<Row> labelled;
    if (withErrors) {
      // With error_handling, ClassifyText has two outputs: "output" and the named error output.
      Schema errorHandling = Schema.builder().addStringField("output").build();
      PCollectionTuple results =
          texts.apply(
              "ClassifyText",
              SentimentPipeline.<PCollectionTuple>classifyText(options)
                  .withKwarg(
                      "error_handling", Row.withSchema(errorHandling).addValue("errors").build()));
      labelled = named(results, "output");
      named(results, "errors")
          .apply(
              "ErrorReasons",
              MapElements.into(TypeDescriptors.strings())
                  .via((Row error) -> "{\"msg\": " + quote(error.getString("msg")) + "}"))
          .apply("WriteErrors", TextIO.write().to(options.getErrors()).withoutSharding());
    } else {
      // Without it, a row that cannot be classified fails the pipeline with the reason.
      labelled =
          texts.apply(
              "ClassifyText",
              SentimentPipeline.<PCollection<Row>>classifyText(options));
    }
    labelled
        .setRowSchema(LABELLED_ROW)
        .apply("LabelledToJson", ToJson.of())
        .apply("WriteLabelled", TextIO.write().to(options.getOutput()).withoutSharding());
    pipeline.run().waitUntilFinish();
  }

  /**
   * ClassifyText from the expansion service, on the field "text", with this run's batch size and model
   * where --maxBatchSize and --model are set (otherwise the transform's own defaults apply).
   */
  static <OutputT extends POutput> PythonExternalTransform<PCollection<Row>, OutputT> classifyText(
      Options options) {
    PythonExternalTransform<PCollection<Row>, OutputT> transform =
        PythonExternalTransform.<PCollection<Row>, OutputT>from(
                "beam_tensorrt.ClassifyText", options.getExpansionService())
            .withKwarg("text_field", "text");
    Integer maxBatchSize = options.getMaxBatchSize();
    if (maxBatchSize != null) {
      transform = transform.withKwarg("max_batch_size", maxBatchSize);
    }
    String model = options.getModel();
    return model == null || model.isEmpty() ? transform : transform.withKwarg("model", model);
  }

  /** One named output of the Python transform. */
  @SuppressWarnings("unchecked")
  static PCollection<Row> named(PCollectionTuple results, String name) {
    Map<TupleTag<?>, PCollection<?>> all = results.getAll();
    for (Map.Entry<TupleTag<?>, PCollection<?>> e : all.entrySet()) {
      if (e.getKey().getId().equals(name)) {
        return (PCollection<Row>) e.getValue();
      }
    }
    throw new IllegalStateException(
        "ClassifyText produced outputs " + Arrays.toString(all.keySet().toArray()) + ", not " + name);
  }

  static String quote(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      switch (c) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\n' -> b.append("\\n");
        default -> {
          if (c < 0x20) {
            b.append(String.format("\\u%04x", (int) c));
          } else {
            b.append(c);
          }
        }
      }
    }
    return b.append('"').toString();
  }
}
