"""The classpath of a Maven descriptor (a pom.xml that only lists dependencies), resolved once per
version of the file and cached; used by the scripts that start Java services from Maven Central."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

CACHE = Path(os.environ.get("BEAM_TENSORRT_CACHE", Path.home() / ".cache" / "beam-tensorrt"))


class JavaToolsError(RuntimeError):
    """Java or Maven is missing, or Maven cannot resolve the jars; the message says which."""


def cache_file(pom: Path) -> Path:
    """Where the classpath of this version of ``pom`` is kept once resolved."""
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    return CACHE / "classpaths" / f"{pom.parent.name}-{digest}.txt"


def record(pom: Path, jars: "list[str]") -> Path:
    """Keep ``jars`` as the classpath of ``pom`` (jars copied from a machine with Maven: on a
    machine without it, ``classpath`` then answers from them; bench/stage_java.sh does this)."""
    cached = cache_file(pom)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(os.pathsep.join(jars))
    return cached


def _valid(cached: Path) -> bool:
    return cached.exists() and all(Path(p).exists() for p in cached.read_text().split(os.pathsep) if p)


def classpath(pom: Path) -> str:
    """The jars of ``pom``, joined by the path separator: the kept classpath of this version of the
    file while its jars exist (no Maven needed), else resolved by Maven and kept; JavaToolsError
    naming what is missing."""
    cached = cache_file(pom)
    if _valid(cached):
        return cached.read_text().strip()
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        raise JavaToolsError(f"needs {' and '.join(missing)} on PATH (a JDK 17+ and Maven)")
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".tmp")
    proc = subprocess.run(["mvn", "-q", "-B", "-f", str(pom), "dependency:build-classpath",
                           f"-Dmdep.outputFile={partial}"], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise JavaToolsError(f"Maven could not resolve the jars of {pom}:\n{(proc.stdout + proc.stderr)[-2000:]}")
    partial.replace(cached)
    return cached.read_text().strip()
