"""``beam-tensorrt build``: the TensorRT plan a worker on this GPU would build, built ahead; the only
way an int8 or fp8 plan is made (calibrated on ``--calibration-texts``, checked against fp16)."""
from __future__ import annotations

from .flags import add_config_flags, config_from_flags

# The fields that decide which plan a worker needs (backends.tensorrt.spec.plan_spec).
CONFIG_FLAGS = ("model", "max_seq_len", "packing", "precision", "device", "engine_cache")


def add(sub) -> None:
    from ..build.guard import DEFAULT_MIN_AGREEMENT

    p = sub.add_parser("build", help="build the TensorRT plan a worker on this GPU needs, ahead (needs TensorRT)",
                       description="Build the TensorRT plan that ClassifyText with the same settings would build on "
                                   "this GPU, into the engine cache (--engine-cache, else this machine's cache), "
                                   "where workers find it. Optional for fp16 and fp32 (workers also build on an "
                                   "engine-cache miss); required for int8 and fp8.")
    add_config_flags(p, CONFIG_FLAGS)
    p.add_argument("--calibration-texts", default=None, metavar="FILE",
                   help="int8/fp8: a text file, one text a line, like the texts the pipeline will classify; "
                        "four in five calibrate the scales, every fifth is held out to check the plan "
                        "against fp16 (at most 2,048 and 2,000 are used)")
    p.add_argument("--min-agreement", type=float, default=DEFAULT_MIN_AGREEMENT,
                   help="int8/fp8: refuse the plan if fewer held-out texts get fp16's label "
                        f"(default: {DEFAULT_MIN_AGREEMENT})")
    p.add_argument("--out", default=None, help="also copy the plan here (its metadata goes to OUT.json)")
    p.set_defaults(func=run)


def run(args) -> int:
    import shutil

    from ..backends.base import REDUCED_PRECISIONS
    from ..backends.tensorrt.loader import plan_for
    from ..backends.tensorrt.metadata import metadata_path
    from ..build.quantize import QuantizeRequest
    from ..errors import UsageError
    from ..models import resolve_model

    config = config_from_flags(args, CONFIG_FLAGS, backend="tensorrt")
    quantize = None
    if config.precision in REDUCED_PRECISIONS:
        if not args.calibration_texts:
            raise UsageError(f"--precision {config.precision} needs --calibration-texts FILE (one text a line)")
        if not 0 <= args.min_agreement <= 1:
            raise UsageError(f"--min-agreement: {args.min_agreement} is not between 0 and 1")
        try:
            with open(args.calibration_texts, encoding="utf-8") as f:
                quantize = QuantizeRequest.from_texts(f.read().splitlines(), args.min_agreement)
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise UsageError(f"--calibration-texts: {e}") from None
    elif args.calibration_texts:
        raise UsageError(f"--calibration-texts calibrates int8 and fp8 plans; --precision is {config.precision}")
    plan, _ = plan_for(resolve_model(config.model), config.backend_options(), quantize)
    if args.out:
        shutil.copyfile(plan, args.out)
        shutil.copyfile(metadata_path(plan), metadata_path(args.out))
    print(open(metadata_path(plan)).read())
    print(args.out or plan)
    return 0
