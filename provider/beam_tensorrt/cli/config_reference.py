"""``beam-tensorrt config-reference``: ClassifyText's configuration table, as in docs/configuration.md."""
from __future__ import annotations


def add(sub) -> None:
    p = sub.add_parser("config-reference", help="print ClassifyText's configuration reference (Markdown)",
                       description="Print the table of ClassifyText's configuration fields, as in docs/configuration.md.")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..reference import config_reference_markdown

    print(config_reference_markdown())
    return 0
