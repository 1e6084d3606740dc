"""The TensorRT backend, whole, in the spirit of Polygraphy's backends: *loading* apart from
*running*.

- ``platform``: find a TensorRT module (TensorRT >= 10 or TensorRT-RTX) and describe the GPU.
- ``spec``: which plan an artifact and its ``BackendOptions`` need (ONNX file, precision, layout,
  optimization profiles); ``profiles``: the shape buckets and their selection.
- ``builder``: ONNX -> plan, with the shared timing cache.
- ``engine_cache`` and ``metadata``: plans shared by machines, and what a runtime checks before
  trusting one.
- ``loader``: the plan for this GPU (cached, fetched or built) -> a runner.
- ``runner``: ``TensorRTSession``, the ``InferenceSession`` that runs a plan.

int8 and fp8 plans are the offline build's (``beam_tensorrt.build``): the loader is handed one
(``spec.QuantizedBuild``) by ``beam-tensorrt build`` and never imports it.

Nothing here imports TensorRT or CUDA until a function that needs them runs.
"""
