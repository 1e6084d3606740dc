"""Command-line flags made from ClassifyText's config schema: names, types, choices, defaults and
help come from ``config.ClassifyTextConfig``, so a flag cannot drift from the field it sets."""
from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any, Sequence

from ..config import config_fields, field_type
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import ClassifyTextConfig


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _plain(doc: str) -> str:
    """The field's Markdown doc as plain text for ``--help`` (argparse treats '%' specially)."""
    return re.sub(r"`([^`]*)`", r"\1", doc).replace("%", "%%")


def add_config_flags(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """A flag for each config field in ``names``: ``--max-seq-len`` for ``max_seq_len``, typed, its
    choices and default the field's; booleans as ``--packing/--no-packing``."""
    fields = {f.name: f for f in config_fields()}
    for name in names:
        f = fields[name]
        base, _ = field_type(f)
        default = f.default
        shown = "" if default is None else f" (default: {str(default).lower() if isinstance(default, bool) else default})"
        kwargs: dict[str, Any] = dict(default=default, help=_plain(f.metadata["doc"]) + shown)
        if base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs.update(type=base, metavar=name.upper())
            if "choices" in f.metadata:
                kwargs.update(choices=list(f.metadata["choices"]), metavar=None)
        parser.add_argument(flag_name(name), **kwargs)


def config_from_flags(args: argparse.Namespace, names: Sequence[str], **more: Any) -> "ClassifyTextConfig":
    """ClassifyText's config out of parsed flags (and ``more`` fields), validated; a mistake is a
    ``UsageError`` naming the flag rather than the field."""
    from ..config import ClassifyTextConfig
    from ..errors import UsageError

    values = {name: getattr(args, name) for name in names}
    try:
        return ClassifyTextConfig.from_kwargs({**values, **more})
    except ConfigError as e:
        flag = flag_name(e.field) if e.field in values else e.field
        raise UsageError(f"{flag}: {e.reason}") from None
