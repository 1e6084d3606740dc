"""The offline build: what runs once, ahead of the workers, to make what they load.

- ``export``: a Hugging Face checkpoint -> a model artifact (``beam-tensorrt export``; the only
  torch user).
- ``calibration``, ``qdq``, ``quantize``, ``guard``: an int8 or fp8 TensorRT plan, calibrated on
  the CPU, Q/DQ pairs placed in the fp16 graph, built strongly typed, checked against fp16 on
  held-out texts and published into the engine cache (``beam-tensorrt build``).

This package uses the inference core (artifacts, the tokenizer, the classifier, the TensorRT
backend's builder and runner); the core never imports it. The TensorRT loader is handed a
``quantize.QuantizeRequest`` (its ``spec.QuantizedBuild`` protocol) when a quantized plan is wanted.
"""
