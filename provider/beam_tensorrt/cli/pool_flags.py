"""The worker-pool flags `beam-tensorrt worker-pool` and `beam-tensorrt serve` share: one definition,
one set of defaults."""
from __future__ import annotations


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
    group.add_argument("--prestart", type=int, default=0, metavar="N",
                       help=f"{condition}keep N workers started ahead of jobs, so that a job's workers begin at "
                            "once (default: 0)")
    group.add_argument("--warm-cuda", action="store_true",
                       help=f"{condition}prestarted workers also make their CUDA context ahead of the job (GPU hosts)")
    group.add_argument("--preload", default=None, metavar="CONFIG",
                       help=f"{condition}ClassifyText's config as JSON, e.g. '{{\"model\": \"sentiment-minilm\", "
                            "\"backend\": \"tensorrt\"}': workers load that model before a job; a job with the same "
                            "model, backend, max_seq_len, device, engine_cache and packing uses it")


def given(args) -> list[str]:
    """The pool flags set on the command line, by name; UsageError for a negative --prestart."""
    from ..errors import UsageError

    if args.prestart < 0:
        raise UsageError(f"--prestart must be 0 or more, not {args.prestart}")
    return [flag for flag, value in (("--prestart", args.prestart), ("--warm-cuda", args.warm_cuda),
                                     ("--preload", args.preload), ("--gpus", args.gpus != "all")) if value]


def gpus(args) -> list[str]:
    """The GPUs ``--gpus`` chose (``CUDA_VISIBLE_DEVICES`` names), or UsageError saying what is visible."""
    from ..errors import UsageError
    from ..gpus import select, visible_gpus

    try:
        return select(args.gpus, visible_gpus())
    except ValueError as e:
        raise UsageError(str(e)) from None
