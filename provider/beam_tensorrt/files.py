"""Local files: where caches live, one writer at a time, and atomic publication.

Everything this package writes for others to read (model artifacts, engine plans, timing caches)
goes through ``atomic_write`` or ``publish_directory``: a reader sees the old file or the whole
new one, never a half-written one.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
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
    """One writer at a time per machine for ``path`` (Beam may start several worker processes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def staging_dir(final: Path) -> Path:
    """An empty directory beside ``final`` (same filesystem, so it can be renamed into place)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))


def publish_directory(staging: Path, final: Path, complete_marker: str) -> Path:
    """Move a fully written directory into place atomically.

    ``rename`` of a directory is atomic on one filesystem; if another process published the same
    thing first (``final/complete_marker`` exists), keep theirs and drop ours.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staging, final)
    except OSError:
        if (final / complete_marker).is_file():
            shutil.rmtree(staging, ignore_errors=True)
        else:
            raise
    return final


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def matches_sha256(path: Path, expected: str) -> bool:
    """Whether ``path`` has the sha256 ``expected``. Hashed once per version of the file: a stamp in
    the cache directory (size, modification time, inode, digest) then stands for it, so that each
    of a machine's worker processes does not read a 400 MB model or plan again to start."""
    path = Path(path)
    stat = path.stat()
    identity = f"{stat.st_size} {stat.st_mtime_ns} {stat.st_ino} {expected}"
    stamp = cache_root() / "verified" / hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    try:
        if stamp.read_text() == identity:
            return True
    except OSError:
        pass
    if sha256_file(path) != expected:
        return False
    with contextlib.suppress(OSError):  # a read-only cache only costs the next process a hash
        atomic_write(stamp, identity.encode())
    return True


@contextlib.contextmanager
def private_temp_dir(prefix: str = "beam-tensorrt-") -> Iterator[Path]:
    """A temporary folder of this command's, in the system's, that Python's ``tempfile`` (here and
    in child processes, through ``TMPDIR``) and the Java processes it starts (``java_tmpdir``) use
    while the command runs, and that goes with everything in it when the command ends.

    Beam leaves empty folders behind (one per pipeline built by an expansion, a job server's
    staging), and Flink unpacks its RPC jars (21 MB) into Java's temporary folder on every start:
    a command's litter is removed with the folder instead of piling up in ``/tmp``."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    previous_env, previous_dir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = previous_dir
        if previous_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = previous_env
        shutil.rmtree(folder, ignore_errors=True)


def java_tmpdir() -> str:
    """The JVM option that gives a Java process this process's temporary folder (Java ignores TMPDIR)."""
    return f"-Djava.io.tmpdir={tempfile.gettempdir()}"
