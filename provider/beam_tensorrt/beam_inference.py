"""Beam's RunInference API, imported without torch.

Beam 2.77's ``apache_beam.ml.inference.base`` imports its ``model_manager`` module while it is being
imported, and that module imports torch and scipy whenever they are installed: ~4.5 s and several
hundred MB per process (CLI, expansion service, YAML runs, SDK workers) in any environment that has
torch, for a feature (``use_model_manager``) ClassifyText does not use. ``base`` already treats the
model manager as optional (it catches the ImportError and imports it on demand when a RunInference
asks for it), so while ``base`` is first imported here that one module is reported missing; later
imports of it, Beam's on-demand one included, work as usual. Import Beam's inference names from this
module, not from ``apache_beam.ml.inference.base``, so that the guard is in place first.
"""
from __future__ import annotations

import sys

from .imports import reported_missing

_DEFERRED = "apache_beam.ml.inference.model_manager"


def _import_base_without_model_manager() -> None:
    if "apache_beam.ml.inference.base" in sys.modules or _DEFERRED in sys.modules:
        return
    with reported_missing([_DEFERRED], "imported on demand, see beam_tensorrt.beam_inference"):
        import apache_beam.ml.inference.base as base
    if base.resource is None:
        # Beam imports `resource` in the same guarded block and reports memory use with it.
        try:
            import resource
        except ImportError:  # not on Windows
            return
        base.resource = resource  # type: ignore[assignment]


_import_base_without_model_manager()

from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference  # noqa: E402

__all__ = ["KeyedModelHandler", "ModelHandler", "PredictionResult", "RunInference"]
