"""Tooling apart from the runtime path: checkpoint export (``export.py``, the only torch user).
Imported only by ``beam-tensorrt export``."""
