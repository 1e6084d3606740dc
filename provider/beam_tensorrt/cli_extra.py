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


COMMANDS = [_serve, _yaml_providers]
