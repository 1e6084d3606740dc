"""Every mistake a user can make, as one family of exceptions: ``UserError``.

A ``UserError``'s message says what went wrong and what to do; the ``beam-tensorrt`` command prints
it as one line (exit status 2), while anything else is a bug and keeps its traceback. Each class
also derives from the built-in exception code written before this module expects (``ValueError``
for a bad value, ``ImportError`` for a missing package, ``RuntimeError`` for a refused plan).

This module imports nothing of the package: every layer may raise these.
"""
from __future__ import annotations

from typing import Any, Optional


class UserError(Exception):
    """A mistake the user can correct; the message names the cause and the fix."""


class UsageError(UserError, ValueError):
    """A mistake in how a command was asked for (a path, an extension, a flag)."""


class ConfigError(UserError, ValueError):
    """Invalid ClassifyText configuration; ``field`` names the offending setting."""

    def __init__(self, field_name: str, message: str):
        self.field = field_name
        self.reason = message
        super().__init__(f"ClassifyText config field '{field_name}': {message}")


class RejectedRow(UserError, ValueError):
    """A row that could not be classified, in a job without an errors file: where it is, why, and
    what it held, as data (the message is made from them).

    Args:
        reason: why the row could not be classified.
        file: the row's file (None where rows do not come from files).
        row: the row's number in its file, from 1.
        shown: the row, as it is shown to the user (shortened).
    """

    def __init__(self, message: str, reason: str = "", file: Optional[str] = None, row: int = 0, shown: str = ""):
        # The message first and the data after it, positionally: Beam re-raises a DoFn's exception
        # as the same type with its step's name appended to the first argument and the others kept.
        super().__init__(message, reason, file, row, shown)
        self.reason, self.file, self.row, self.shown = reason, file, row, shown

    @classmethod
    def of(cls, reason: str, file: Optional[str], row: int, shown: str) -> "RejectedRow":
        where = f"{file}, row {row}" if file else "a row"
        return cls(f"{where}: {reason}: {shown}", reason, file, row, shown)

    def __str__(self) -> str:
        where = f"{self.file}, row {self.row}" if self.file else "a row"
        return f"{where}: {self.reason}: {self.shown}" if self.reason else str(self.args[0])


class ArtifactError(UserError, ValueError):
    """A model artifact that is missing, incomplete, corrupt or unreadable."""


class MissingPackageError(UserError, ImportError):
    """A package or tool the asked-for work needs is not installed; the message says how to get it."""


class MissingEncoderError(MissingPackageError):
    """A named model whose encoder package is not installed."""


class TensorRTUnavailable(MissingPackageError):
    """The TensorRT backend was asked for where no usable TensorRT module imports."""


class PrecisionRefused(UserError, RuntimeError):
    """The reduced-precision plan labelled too few held-out texts as fp16 does; not published.

    Args:
        figures: the guard's figures (``build.guard.GuardFigures``).
    """

    def __init__(self, figures: Any):
        self.figures = figures
        super().__init__(
            f"{figures.precision} plan refused: its labels agree with fp16 on {figures.agreement:.2%} of "
            f"{figures.rows} held-out texts, under the threshold {figures.min_agreement:.2%}"
            + (f"; {figures.nan_rows} rows gave NaN" if figures.nan_rows else "")
            + ". Calibrate on more texts like the pipeline's, or keep precision fp16.")


class PlanNotBuilt(UserError, RuntimeError):
    """A worker asked for a reduced-precision plan that nobody built ahead."""
