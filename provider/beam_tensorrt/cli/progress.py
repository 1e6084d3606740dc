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

    def line(self, done: int, errors: int) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-6)
        rate = (done + errors) / elapsed
        left = max(self.total - done - errors, 0)
        eta = f", ~{duration(left / rate)} left" if rate > 0 and left else ""
        share = f" / {self.total:,} ({100 * (done + errors) / self.total:.0f}%)" if self.total else ""
        errs = f", {errors:,} {row_word(errors)} rejected" if errors else ""
        return f"{done + errors:,}{share} {row_word(done + errors)} done{errs}, {rate_text(rate)}{eta}"

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
