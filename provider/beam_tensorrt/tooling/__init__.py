"""Build tooling, apart from the runtime path: checkpoint export (the only torch user), the ONNX
graph builder, artifact assembly and TensorRT engine building. Imported only when something is
built: ``beam-tensorrt export`` / ``build``, a named model's first use, an engine-cache miss."""
