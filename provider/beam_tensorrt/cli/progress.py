"""The main job's progress: rows done, rows/s and time left while it runs, then a summary."""
from __future__ import annotations

import sys
import threading
import time
from typing import Callable


class ProgressReporter:
    """Rows done, rows/s and time left while a job runs: a bar on a terminal, a line every
    ``interval`` seconds otherwise; then one summary line."""

    def __init__(self, total: int, stream=sys.stderr, interval: float = 10.0):
        self.total, self.stream, self.interval = total, stream, interval
        self.tty = stream.isatty()
        self.start = time.monotonic()
        self._stop: threading.Event | None = None
        self._first: tuple[float, int] | None = None  # (when, rows) of the first rows seen done

    def line(self, done: int, errors: int, now: float | None = None) -> str:
        """The progress line. The rate, and the time left from it, count from the first rows done:
        until then the job was starting (loading the model, reading), which says nothing of its pace."""
        now = time.monotonic() if now is None else now
        finished = done + errors
        share = f" / {self.total:,} ({100 * finished / self.total:.0f}%)" if self.total else ""
        if not finished:
            return f"0{share} rows done, starting ({duration(now - self.start)})"
        if self._first is None:
            self._first = (now, finished)
        since, base = self._first
        rate = (finished - base) / (now - since) if finished > base and now > since else 0.0
        left = max(self.total - finished, 0)
        eta = f", ~{duration(left / rate)} left" if rate > 0 and left else ""
        errs = f", {errors:,} {row_word(errors)} rejected" if errors else ""
        pace = rate_text(rate) if rate > 0 else "measuring the rate"
        return f"{finished:,}{share} {row_word(finished)} done{errs}, {pace}{eta}"

    def begin(self, done: Callable[[], tuple[int, int]]) -> None:
        """Report every ``interval`` seconds what ``done()`` says: (rows classified, rows rejected)."""
        self._stop = threading.Event()

        def run():
            period = 0.5 if self.tty else self.interval
            while not self._stop.wait(period):
                classified, errors = done()
                text = self.line(classified, errors)
                if self.tty:
                    width = 24
                    filled = int(width * min(1.0, (classified + errors) / self.total)) if self.total else 0
                    self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {text}\x1b[K")
                else:
                    self.stream.write(f"beam-tensorrt: {text}\n")
                self.stream.flush()

        threading.Thread(target=run, daemon=True, name="progress").start()

    def end(self) -> None:
        if self._stop is not None:
            self._stop.set()
            if self.tty:
                self.stream.write("\r\x1b[K")
                self.stream.flush()


def row_word(n: int) -> str:
    return "row" if n == 1 else "rows"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def rate_text(rows_per_second: float) -> str:
    """``12,345 rows/s``; below 10 a row a second with a decimal, so a slow job does not read 0."""
    return f"{rows_per_second:,.0f} rows/s" if rows_per_second >= 10 else f"{rows_per_second:.2g} rows/s"
