"""``beam-tensorrt``: classify files, export checkpoints, build engines, serve the expansion service."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence


def _add_classify(sub) -> None:
    p = sub.add_parser("classify", help="classify a TSV, CSV, JSON-lines or text file in a local Beam pipeline",
                       description="Run ClassifyText over a file and write JSON lines "
                                   "(every input field + label + score). The format follows the extension: "
                                   ".tsv, .csv (header row), .jsonl/.json (one object a line), .txt (one text a line).")
    p.add_argument("--input", required=True, help="input file")
    p.add_argument("--output", required=True, help="output JSON-lines file")
    p.add_argument("--text-field", default="text", help="field holding the text (default: text)")
    p.add_argument("--model", default=None, help="named model or artifact directory (default: sentiment-minilm)")
    p.add_argument("--backend", default="auto", help="auto, onnxruntime, tensorrt or torch (default: auto)")
    p.add_argument("--label-field", default="label")
    p.add_argument("--score-field", default="score")
    p.add_argument("--max-seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=64, help="largest batch (default: 64)")
    p.add_argument("--errors", default=None, help="also write rows that could not be classified here (JSON lines); "
                                                  "without it such a row fails the job")
    p.add_argument("--runner", default="FnApiRunner",
                   help="Beam runner (default: FnApiRunner, Beam's local runner; DirectRunner may first try to download Prism)")


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="turn a Hugging Face sequence-classification checkpoint into an artifact (needs torch)")
    p.add_argument("checkpoint", help="checkpoint directory (config.json, weights, tokenizer.json)")
    p.add_argument("--out", required=True, help="artifact directory to write")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime vs PyTorch logits check")


def _add_model(sub) -> None:
    p = sub.add_parser("model", help="build or locate a named model's artifact")
    p.add_argument("action", choices=["build", "path"])
    p.add_argument("name", nargs="?", default="sentiment-minilm")


def _add_reference(sub) -> None:
    sub.add_parser("config-reference", help="print ClassifyText's configuration reference (Markdown)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="beam-tensorrt", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_classify(sub)
    _add_export(sub)
    _add_model(sub)
    _add_reference(sub)
    for extra in _extra_commands():
        extra(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args) if hasattr(args, "func") else _dispatch(args)
    except ValueError as e:  # ConfigError, ArtifactError: user mistakes, not crashes
        print(f"beam-tensorrt: error: {e}", file=sys.stderr)
        return 2


def _extra_commands():
    """Sub-commands that live in their own modules (serve, build...), registered lazily."""
    from . import cli_extra

    return cli_extra.COMMANDS


def _dispatch(args) -> int:
    if args.command == "classify":
        from .jobs import classify_file

        kwargs = dict(text_field=args.text_field, backend=args.backend, label_field=args.label_field,
                      score_field=args.score_field, max_seq_len=args.max_seq_len, max_batch_size=args.batch_size)
        if args.model:
            kwargs["model"] = args.model
        counts = classify_file(args.input, args.output, errors_path=args.errors, runner=args.runner, **kwargs)
        print(f"classified {counts['classified']} rows -> {args.output}" +
              (f"; {counts['errors']} rows -> {args.errors}" if args.errors else ""), file=sys.stderr)
        return 0
    if args.command == "export":
        from .tooling.export import export_checkpoint

        artifact = export_checkpoint(args.checkpoint, args.out, opset=args.opset, verify=not args.no_verify)
        print(f"wrote {artifact.path} (labels: {', '.join(artifact.manifest.labels)})")
        return 0
    if args.command == "model":
        from .models import resolve_model

        artifact = resolve_model(args.name)
        print(artifact.path)
        return 0
    if args.command == "config-reference":
        from .reference import config_reference_markdown

        print(config_reference_markdown())
        return 0
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
