"""One log line when Beam's local runner is about to run ClassifyText on a GPU in one SDK process.

A pipeline launched with Beam's own ``python -m apache_beam.yaml.main`` (or any Python pipeline on
the local runner with its defaults) runs every step in one process: it tokenizes, waits for the
GPU, then writes, one after another, and the GPU idles most of the time. ``beam-tensorrt yaml``
and ``beam-tensorrt classify`` choose their workers themselves; elsewhere the pipeline keeps
running as asked, and this says once what it leaves on the table and how to take it.
"""
from __future__ import annotations

import logging
import threading

log = logging.getLogger("beam_tensorrt")

# Beam's local runners as pipeline options name them (None: Beam's default, the local one).
LOCAL_RUNNERS = (None, "DirectRunner", "FnApiRunner", "SwitchingDirectRunner")

_said = threading.Event()


def one_process_advice(options, backend: str) -> str:
    """What a pipeline with ``options`` leaves on the table by classifying on ``backend`` in one
    local SDK process, or empty when it does not (another runner, several workers, no GPU)."""
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

    from .gpus import default_workers, visible_gpus

    if options is None or options.view_as(StandardOptions).runner not in LOCAL_RUNNERS:
        return ""
    direct = options.view_as(DirectOptions)
    if (direct.direct_num_workers or 1) != 1 or direct.direct_running_mode != "in_memory":
        return ""
    gpus = visible_gpus()
    if not gpus:
        return ""
    workers = default_workers(backend, len(gpus))
    if workers <= 1:
        return ""
    return (f"ClassifyText runs on the GPU from one SDK process of Beam's local runner, which leaves the GPU idle "
            f"most of the time: run the pipeline with `beam-tensorrt yaml` (it starts {workers} workers with the "
            f"model loaded) or give Beam --direct_num_workers={workers} --direct_running_mode=multi_processing")


def advise(options, backend: str) -> None:
    """Log ``one_process_advice`` once a process, at WARNING (Beam's YAML launcher shows warnings)."""
    if _said.is_set():
        return
    advice = one_process_advice(options, backend)
    if advice:
        _said.set()
        log.warning(advice)


def chosen_by_the_launcher() -> None:
    """The launcher chose the workers itself (``beam-tensorrt yaml``): nothing to advise."""
    _said.set()
