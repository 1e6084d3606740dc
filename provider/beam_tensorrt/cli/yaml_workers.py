"""How many SDK workers ``beam-tensorrt yaml`` gives a pipeline run on Beam's local runner, and which
model they load ahead: chosen as the main job chooses (``--workers auto``), from the pipeline itself.

Beam's local runner runs a pipeline in one SDK process unless told otherwise: on a GPU host that
process tokenizes, waits for the GPU and writes, one after another, and the GPU idles most of the
time. When the pipeline classifies in-process (``ClassifyText`` from a ``type: python`` provider)
on a GPU backend, the command starts a worker pool of ``gpus.default_workers`` processes instead,
each with its CUDA context made and, where the pipeline has one ClassifyText config, its model
loaded before the job begins. A pipeline whose ClassifyText comes from a service (``type:
remote``) keeps Beam's one process: on an H100 such a pipeline over review-length texts lost rows
(exit 0) when the service ran process workers, and until that is understood nothing here chooses
that set-up. A pipeline that says how it wants to run (``--runner`` other than the local one, ``--direct_num_workers``, ``--direct_running_mode``, ``--streaming``, on the command
line or in its ``options:``) runs as it says.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence

if TYPE_CHECKING:
    from ..config import ClassifyTextConfig

TRANSFORM = "ClassifyText"
# Beam's local runner as this command names it (other local runners, DirectRunner for streaming
# among them, are left as they are).
LOCAL_RUNNER = "FnApiRunner"
# Beam options that say how a local pipeline runs: given any, the pipeline's choice stands.
PARALLELISM_OPTIONS = ("direct_num_workers", "direct_running_mode")


@dataclasses.dataclass(frozen=True)
class LocalWorkers:
    """What the local runner gets: ``workers`` SDK processes (1: Beam's own, in this process), the
    model they load ahead (ClassifyText's config, validated, or None), and why."""

    workers: int
    preload: "Optional[ClassifyTextConfig]" = None
    reason: str = ""


def classify_configs(spec: Any) -> list[dict]:
    """The configs of the in-process ClassifyText transforms of a parsed pipeline spec: none when
    the pipeline's providers give ClassifyText from anything but a ``type: python`` provider (a
    ``type: remote`` one runs it in the service's workers, not here)."""
    if not isinstance(spec, dict) or not _in_process(spec.get("providers") or []):
        return []
    return [dict(node.get("config") or {}) for node in spec_nodes(spec.get("pipeline"))
            if node.get("type") == TRANSFORM]


def _in_process(providers: Sequence[Any]) -> bool:
    for provider in providers:
        if not isinstance(provider, dict):
            continue
        include = str(provider.get("include", ""))
        if include:
            if include.endswith("remote_providers.yaml"):
                return False
            if include.endswith("providers.yaml"):
                return True
        if TRANSFORM in (provider.get("transforms") or {}):
            return provider.get("type") == "python"
    return False


def spec_nodes(node: Any) -> Iterator[dict]:
    """Every mapping of a parsed pipeline spec, depth first (transforms, their configs, providers)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from spec_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from spec_nodes(value)


def choose(spec: Any, explicit_options: dict, workers: str, gpus: int) -> LocalWorkers:
    """The local runner's workers for a pipeline.

    Args:
        spec: the pipeline, parsed (after its Jinja variables are filled in).
        explicit_options: the Beam options the command line and the pipeline's ``options:`` set.
        workers: ``--workers``: ``auto`` or a number.
        gpus: how many GPUs the workers spread over.
    """
    from ..worker_pool.local import workers_flag

    runner = explicit_options.get("runner")
    if runner != LOCAL_RUNNER:
        return LocalWorkers(1, reason=f"--runner={runner} runs the pipeline")
    if explicit_options.get("streaming"):
        return LocalWorkers(1, reason="a streaming pipeline")
    given = [name for name in PARALLELISM_OPTIONS if name in explicit_options]
    if given:
        return LocalWorkers(1, reason=f"the pipeline's --{given[0]} stands")
    configs = classify_configs(spec)
    if not configs and workers == "auto":
        return LocalWorkers(1, reason="no in-process ClassifyText")
    backends = {str(c.get("backend", "auto")) for c in configs}
    # Several backends: the workers are chosen for the lightest (ONNX Runtime wants one process).
    backend = "onnxruntime" if "onnxruntime" in backends else (backends.pop() if len(backends) == 1 else "auto")
    count = workers_flag(workers, backend, gpus)
    if count <= 1:
        return LocalWorkers(1, reason=f"backend {backend}: one SDK process")
    return LocalWorkers(count, _preload(configs), reason=f"{count} SDK worker processes")


def _preload(configs: list[dict]) -> "Optional[ClassifyTextConfig]":
    """The one ClassifyText config for the workers to load ahead; None for none or several, or one
    that does not validate (the pipeline itself then reports it, as it would have)."""
    from ..config import ClassifyTextConfig
    from ..errors import UserError

    distinct = {repr(sorted(c.items())) for c in configs}
    if len(distinct) != 1:
        return None
    try:
        return ClassifyTextConfig.from_kwargs(configs[0])
    except (UserError, TypeError, ValueError):
        return None
