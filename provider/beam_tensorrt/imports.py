"""Importing a module of Beam's while some optional modules it would load are reported missing.

Beam imports optional heavy dependencies at import time when they are installed (torch through
``model_manager``, sentence-transformers, TensorFlow Hub... through Beam YAML's ML transforms),
guarded by ``except ImportError``, for features a ClassifyText pipeline does not use: seconds and
hundreds of MB per process. While the module is imported inside ``reported_missing``, those names
raise ImportError, so Beam takes its own "not installed" branch; afterwards they import as usual.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import sys
from typing import Iterator, Optional, Sequence


class _ReportMissing(importlib.abc.MetaPathFinder):
    def __init__(self, names: frozenset[str], why: str):
        self._names = names
        self._why = why

    def find_spec(self, fullname: str, path: Optional[Sequence[str]], target=None):
        if fullname.split(".", 1)[0] in self._names or fullname in self._names:
            raise ImportError(f"{fullname} is not loaded here ({self._why})")
        return None


@contextlib.contextmanager
def reported_missing(names: Sequence[str], why: str) -> Iterator[None]:
    """Within the block, importing any of ``names`` (a top-level package or a dotted module) that is
    not imported yet raises ImportError naming ``why``.

    Example::

        with reported_missing(["sentence_transformers"], "not used by this pipeline"):
            import apache_beam.yaml.yaml_ml
    """
    finder = _ReportMissing(frozenset(n for n in names if n not in sys.modules), why)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
