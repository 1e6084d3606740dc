"""Our entry points' logging: what matters to the user, without Beam's known noise."""
from __future__ import annotations

import logging

# Warnings Beam logs on every run that say nothing about the user's job.
BEAM_NOISE = (
    "apitools not found",
    "Resource module is not available",
    "Could not load ML transform module",
    "Deleting 1 existing files in target path",  # an output file replaced: the summary line names it
)


class _DropBeamNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(noise in message for noise in BEAM_NOISE)


def drop_beam_noise_on_the_root_logger() -> None:
    """Drop Beam's known noise logged through the root logger (``logging.warning(...)``, as Beam's
    import does). For our own processes' entry points (a pool worker's boot), never called on
    import: a library leaves the program's loggers alone. Idempotent; other records pass untouched."""
    root = logging.getLogger()
    if not any(isinstance(f, _DropBeamNoise) for f in root.filters):
        root.addFilter(_DropBeamNoise())


def quiet_logging(verbose: bool = False) -> None:
    """Our entry points' logging: warnings and above, without Beam's known noise; -v for INFO."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_DropBeamNoise())
    if not verbose:
        # A failing row is reported by us in one line; Beam would also log it with a traceback.
        for name in ("apache_beam.runners", "apache_beam.utils.subprocess_server"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
