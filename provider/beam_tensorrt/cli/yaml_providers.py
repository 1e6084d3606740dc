"""``beam-tensorrt yaml-providers``: where the package's Beam YAML providers file is."""
from __future__ import annotations


def add(sub) -> None:
    p = sub.add_parser("yaml-providers", help="print the path of the Beam YAML providers file in the package",
                       description="Print the path of the Beam YAML providers file shipped in the package, for "
                                   "`providers: [{include: PATH}]`.")
    p.add_argument("--remote", action="store_true", help="the `type: remote` providers file (needs `serve`)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..yaml import providers_path

    print(providers_path(remote=args.remote))
    return 0
