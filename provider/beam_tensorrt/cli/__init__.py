"""The ``beam-tensorrt`` command: classify files, serve ClassifyText, build and run what it needs.

One module per sub-command, each with ``add(subparsers)`` registering its parser and the function
that runs it; a sub-command imports what it needs only when it runs, so ``--help`` stays fast. A
user's mistake ends in one line on stderr that names the cause and what to do, and exit status 2;
anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .. import __version__
from ..errors import RejectedRow, UserError
from ..logs import quiet_logging
from . import (build, classify, config_reference, export, flink_cluster, flink_job_server, model, serve,
               worker_pool, yaml_pipeline, yaml_providers)

DESCRIPTION = "GPU BERT text classification for Apache Beam: classify files, serve ClassifyText to Beam YAML and Java."
# In the order `--help` lists them.
COMMANDS = (classify, yaml_pipeline, serve, worker_pool, flink_job_server, flink_cluster, build, model, export, config_reference,
            yaml_providers)


def user_error(e: BaseException) -> Optional[str]:
    """The one-line message for a user's mistake (a ``UserError``, or an ``OSError`` such as a
    file that cannot be read), or None for anything else: a bug, which keeps its traceback."""
    if isinstance(e, RejectedRow):
        # ClassifyText's reasons name its config fields; here they are the CLI's flags.
        reason = e.reason.replace("set allow_empty_text", "pass --allow-empty-text")
        return (f"{e.file}, row {e.row}: {reason}: {e.shown} (pass --errors FILE to write such rows there and "
                "keep going)")
    if isinstance(e, (UserError, OSError)):
        text = str(e).strip()
        return text.splitlines()[0] if text else type(e).__name__
    if _caused_by_user_error(e):
        # Beam YAML wraps a transform's ConfigError in its own ValueError, which says where.
        text = str(e).strip()
        return text.splitlines()[0] if text else None
    return None


def _caused_by_user_error(e: BaseException, depth: int = 8) -> bool:
    """Whether ``e`` was raised while handling, or from, a ``UserError`` (Beam's wrapping of ours)."""
    seen = e.__cause__ or e.__context__
    while seen is not None and depth:
        if isinstance(seen, UserError):
            return True
        seen, depth = seen.__cause__ or seen.__context__, depth - 1
    return False


class _Parser(argparse.ArgumentParser):
    """argparse, with a mistake reported as every other one is: one line, exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        if message.startswith("unrecognized arguments"):
            message += " (Beam options go after --; quote a glob: --input 'data/*.csv')"
        self.exit(2, f"beam-tensorrt: error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="beam-tensorrt", description=DESCRIPTION)
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level, Beam's warnings included")
    p.add_argument("--version", action="version", version=f"beam-tensorrt {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add(sub)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = bool({"-v", "--verbose"} & set(argv[:1]))
    quiet_logging(verbose)  # before anything imports Beam, whose imports log
    # Beam's options come after "--", whole: a stray word before it is a mistake, not Beam's.
    split = argv.index("--") if "--" in argv else len(argv)
    p = parser()
    args = p.parse_args(argv[:split])
    beam_options = argv[split + 1:]
    if beam_options:
        if not hasattr(args, "beam_options"):
            p.error(f"{args.command} takes no Beam options (after --)")
        args.beam_options = [*args.beam_options, *beam_options]
    from ..files import private_temp_dir

    try:
        with private_temp_dir():  # what the command and Beam leave in the temp folder goes with it
            return args.func(args)
    except KeyboardInterrupt:
        print("beam-tensorrt: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        message = user_error(e)
        if message is None or args.verbose:
            raise
        print(f"beam-tensorrt: error: {message}", file=sys.stderr)
        return 2
