"""Beam's local runner with its SDK workers from a worker pool started in this process: what the
main job (``jobs``) and ``beam-tensorrt yaml`` run on a GPU host.

Beam's local runner (``FnApiRunner``) runs one SDK worker in its own process unless told otherwise;
``--direct_running_mode=multi_processing`` starts more, each importing Beam and loading the model
once the job has begun. Here the workers come from a ``CheckedWorkerPoolServicer`` started with the
job instead (Beam's ``EXTERNAL`` environment), booted, CUDA context made and the model loaded
before the first bundle arrives, one GPU each where there are several.
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Optional, Sequence

if TYPE_CHECKING:
    from ..config import ClassifyTextConfig


@contextlib.contextmanager
def scoped_environ(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in this process's environment while the block runs, the earlier ones back after
    (what child processes started in the block inherit)."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def workers_flag(value: str, backend: str, gpus: int) -> int:
    """``--workers`` (``auto`` or a whole number of at least 1), as a number of SDK processes."""
    from ..errors import UsageError

    if value == "auto":
        from ..gpus import default_workers

        return default_workers(backend, gpus)
    if not value.isdigit() or int(value) < 1:
        raise UsageError(f"--workers: {value!r} is not auto or a whole number of at least 1")
    return int(value)


@contextlib.contextmanager
def pooled_local_runner(workers: int, preload: "Optional[ClassifyTextConfig]" = None, gpus: Sequence[str] = (),
                        warm_cuda: bool = False) -> Iterator[tuple[Any, list[str]]]:
    """Beam's ``FnApiRunner`` and the pipeline options for ``workers`` SDK processes from a pool
    started here (stopped when the block ends).

    Args:
        workers: SDK worker processes, all started ahead of the job.
        preload: ClassifyText's config, validated: each worker loads that model before the job;
            None: none.
        gpus: ``CUDA_VISIBLE_DEVICES`` names the workers spread over, one each (``gpus.GpuSpreader``).
        warm_cuda: each worker also makes its CUDA context ahead of the job.

    Example::

        with pooled_local_runner(8, preload=config, gpus=["0"]) as (runner, options):
            with beam.Pipeline(runner=runner, options=PipelineOptions(options)) as p:
                ...
    """
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    from apache_beam.transforms.environments import ExternalEnvironment

    from . import start_pool
    from .servicer import CheckedWorkerPoolServicer

    quiet = not logging.getLogger().isEnabledFor(logging.INFO)  # -v shows the workers' INFO lines too
    servicer = CheckedWorkerPoolServicer(use_process=True, prestart=workers, preload=preload or "", quiet=quiet,
                                         gpus=gpus, warm_cuda=warm_cuda)
    server, port = start_pool("127.0.0.1", 0, servicer, threads=max(4, workers))
    try:
        yield (FnApiRunner(default_environment=ExternalEnvironment(f"127.0.0.1:{port}")),
               [f"--direct_num_workers={workers}"])
    finally:
        server.stop(grace=None)
        servicer.close()
