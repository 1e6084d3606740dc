"""``beam-tensorrt model``: assemble a named model's artifact (once) and print where it is."""
from __future__ import annotations

from ..models import DEFAULT_MODEL, NAMED_MODELS


def add(sub) -> None:
    p = sub.add_parser("model", help="build a named model's artifact (once) and print where it is",
                       description="Assemble a named model's artifact in the cache directory on first use "
                                   "(no torch) and print its path.")
    p.add_argument("action", choices=["build", "path"], help="build and path do the same: the path is printed")
    p.add_argument("name", nargs="?", default=DEFAULT_MODEL, choices=sorted(NAMED_MODELS),
                   help=f"model name (default: {DEFAULT_MODEL})")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..models import resolve_model

    print(resolve_model(args.name).path)
    return 0
