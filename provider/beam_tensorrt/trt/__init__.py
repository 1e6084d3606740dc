"""TensorRT: engine build (build.py), plan metadata and checks (metadata.py), shape profiles
(profiles.py), the shared engine cache (cache.py) and the runtime (runtime.py). Nothing here
imports TensorRT or CUDA until a function that needs them runs."""
