"""The worker-pool flags `beam-tensorrt worker-pool` and `beam-tensorrt serve` share: one definition,
one set of defaults. Their ``auto`` defaults are what a throughput user wants on the host the
command runs on: on a GPU host (``gpus.gpu_backend_host``) workers started ahead, as many as the
main job would use (``gpus.default_workers``), each with its CUDA context; elsewhere none ahead."""
from __future__ import annotations

import argparse

AUTO = "auto"


def add_gpus(group, condition: str = "") -> None:
    """``--gpus``, which the pools and the CLI's own workers share."""
    group.add_argument("--gpus", default="all", metavar="all|none|0,1,...",
                       help=f"{condition}spread worker processes over these GPUs, one GPU (CUDA context) each, round "
                            "robin: all visible ones (CUDA_VISIBLE_DEVICES respected), none (workers see what this "
                            "process sees), or their positions, e.g. 0,1 (default: all)")


def add(group, condition: str = "") -> None:
    """``--prestart``, ``--warm-cuda``, ``--preload`` and ``--gpus`` on ``group``; ``condition``
    prefixes each help (e.g. "with --worker-processes: ")."""
    add_gpus(group, condition)
    group.add_argument("--prestart", default=AUTO, metavar="N",
                       help=f"{condition}keep N workers started ahead of jobs, so that a job's workers begin at "
                            "once (default: auto, on a GPU host as many as `classify --workers auto` runs, "
                            "elsewhere 0)")
    group.add_argument("--warm-cuda", action=argparse.BooleanOptionalAction, default=None,
                       help=f"{condition}prestarted workers also make their CUDA context ahead of the job "
                            "(default: on a GPU host)")
    group.add_argument("--preload", default=None, metavar="CONFIG",
                       help=f"{condition}ClassifyText's config as JSON, e.g. '{{\"model\": \"sentiment-minilm\", "
                            "\"backend\": \"tensorrt\"}': workers load that model before a job; a job with the same "
                            "model, backend, max_seq_len, device, engine_cache and packing uses it")


def given(args) -> list[str]:
    """The pool flags set on the command line, by name; UsageError for a --prestart that is not
    auto or a whole number."""
    from ..errors import UsageError

    if args.prestart != AUTO and not str(args.prestart).isdigit():
        raise UsageError(f"--prestart must be auto or 0 or more, not {args.prestart}")
    return [flag for flag, value in (("--prestart", args.prestart != AUTO), ("--warm-cuda", args.warm_cuda is not None),
                                     ("--preload", args.preload), ("--gpus", args.gpus != "all")) if value]


def prestart(args, gpus: int) -> int:
    """``--prestart`` as a number: ``auto`` is ``gpus.default_workers`` on a GPU host, else 0."""
    from ..gpus import default_workers, gpu_backend_host

    given(args)
    if args.prestart != AUTO:
        return int(args.prestart)
    return default_workers("auto", gpus) if gpu_backend_host() else 0


def warm_cuda(args) -> bool:
    """``--warm-cuda``/``--no-warm-cuda``, else whether this is a GPU host."""
    from ..gpus import gpu_backend_host

    return gpu_backend_host() if args.warm_cuda is None else args.warm_cuda


def gpus(args) -> list[str]:
    """The GPUs ``--gpus`` chose (``CUDA_VISIBLE_DEVICES`` names), or UsageError saying what is visible."""
    from ..errors import UsageError
    from ..gpus import select, visible_gpus

    try:
        return select(args.gpus, visible_gpus())
    except ValueError as e:
        raise UsageError(str(e)) from None
