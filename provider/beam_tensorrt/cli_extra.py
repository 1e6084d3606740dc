"""Sub-commands registered beside the core ones; each imports its module only when run."""
from __future__ import annotations

import argparse


def _serve(sub) -> None:
    from .expansion import service_args

    p = sub.add_parser("serve", help="run the expansion service (Beam YAML `type: remote`, Java, other SDKs)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description=service_args.DESCRIPTION)
    service_args.add_arguments(p)
    p.set_defaults(func=service_args.run)


def _yaml_providers(sub) -> None:
    p = sub.add_parser("yaml-providers", help="print the path of the Beam YAML providers file shipped in the package")
    p.add_argument("--remote", action="store_true", help="the `type: remote` providers file (needs `serve`)")

    def run(args) -> int:
        from .yaml import providers_path

        print(providers_path(remote=args.remote))
        return 0

    p.set_defaults(func=run)


def _build(sub) -> None:
    p = sub.add_parser("build", help="build a TensorRT plan for this GPU from an artifact's ONNX (needs TensorRT)")
    p.add_argument("artifact", help="artifact directory, or a named model (sentiment-minilm)")
    p.add_argument("--out", required=True, help="plan file to write (metadata goes to PLAN.json)")
    p.add_argument("--precision", choices=["fp16", "fp32"], default="fp16")
    p.add_argument("--max-seq-len", type=int, default=128, help="longest sequence the plan accepts")
    p.add_argument("--max-batch", type=int, default=256, help="most rows per call (profiles scale it down for long text)")
    p.add_argument("--timing-cache", default=None, help="timing cache file to read and update (speeds up rebuilds)")
    p.add_argument("--trt-module", default=None, help="tensorrt, tensorrt_rtx or tensorrt_rtx_bindings (default: first found)")

    def run(args) -> int:
        from pathlib import Path

        from .models import resolve_model
        from .tooling.engine import build_artifact_engine

        artifact = resolve_model(args.artifact)
        meta = build_artifact_engine(artifact, Path(args.out), precision=args.precision, max_seq_len=args.max_seq_len,
                                     max_batch=args.max_batch, trt_module=args.trt_module,
                                     timing_cache=Path(args.timing_cache) if args.timing_cache else None)
        print(meta.to_json())
        return 0

    p.set_defaults(func=run)


COMMANDS = [_serve, _yaml_providers, _build]
