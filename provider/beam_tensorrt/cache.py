"""Where built artifacts live: the user cache directory (XDG), overridable."""
from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

CACHE_ENV = "BEAM_TENSORRT_CACHE"


def cache_root() -> Path:
    """``$BEAM_TENSORRT_CACHE``, else ``$XDG_CACHE_HOME/beam-tensorrt``, else ``~/.cache/beam-tensorrt``."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "beam-tensorrt"


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """One builder at a time per machine for a given artifact (Beam may start several worker processes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
