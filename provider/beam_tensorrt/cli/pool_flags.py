"""The worker-pool flags `beam-tensorrt worker-pool` and `beam-tensorrt serve` share: one definition,
one set of defaults."""
from __future__ import annotations


def add(group, condition: str = "") -> None:
    """``--prestart``, ``--warm-cuda`` and ``--preload`` on ``group``; ``condition`` prefixes each help
    (e.g. "with --worker-processes: ")."""
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
    from ..formats import UsageError

    if args.prestart < 0:
        raise UsageError(f"--prestart must be 0 or more, not {args.prestart}")
    return [flag for flag, value in (("--prestart", args.prestart), ("--warm-cuda", args.warm_cuda),
                                     ("--preload", args.preload)) if value]
