"""``beam-tensorrt build``: the TensorRT plan a worker on this GPU would build, built ahead."""
from __future__ import annotations

from .flags import add_config_flags, config_from_flags

# The fields that decide which plan a worker needs (backends.tensorrt.spec.plan_spec).
CONFIG_FLAGS = ("model", "max_seq_len", "packing", "device", "engine_cache")


def add(sub) -> None:
    p = sub.add_parser("build", help="build the TensorRT plan a worker on this GPU needs, ahead (needs TensorRT)",
                       description="Build the TensorRT plan that ClassifyText with the same settings would build on "
                                   "this GPU, into the engine cache (--engine-cache, else this machine's cache), "
                                   "where workers find it. Optional: workers also build on an engine-cache miss.")
    add_config_flags(p, CONFIG_FLAGS)
    p.add_argument("--precision", choices=["fp16", "fp32"], default="fp16", help="(default: fp16)")
    p.add_argument("--out", default=None, help="also copy the plan here (its metadata goes to OUT.json)")
    p.set_defaults(func=run)


def run(args) -> int:
    import dataclasses
    import shutil

    from ..backends.tensorrt.loader import plan_for
    from ..backends.tensorrt.metadata import metadata_path
    from ..models import resolve_model

    config = config_from_flags(args, CONFIG_FLAGS)
    options = dataclasses.replace(config.backend_options(), fp16=args.precision == "fp16")
    plan, _ = plan_for(resolve_model(config.model), options)
    if args.out:
        shutil.copyfile(plan, args.out)
        shutil.copyfile(metadata_path(plan), metadata_path(args.out))
    print(open(metadata_path(plan)).read())
    print(args.out or plan)
    return 0
