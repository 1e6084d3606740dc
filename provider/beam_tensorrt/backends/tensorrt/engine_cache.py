"""The engine cache: find a plan matching (ONNX, GPU, TensorRT version, profiles, precision), or build
one and publish it, so that a fleet of fresh GPU workers does not each rebuild.

Two levels: a local directory per machine (a file lock makes one build per machine at a time;
publish is an atomic rename) and an optional shared location (any Beam filesystem: a path,
gs://, s3://...). On the shared location the plan is written first and its metadata last: the
metadata is the commit marker, and readers check the plan's sha256 against it. A ``.building``
lease tells other machines that a build is under way, so they wait for it instead of rebuilding.

Beside the plans lives the builder's *timing cache* for each GPU model and TensorRT version
(``timing-KEY.cache``): the kernel timings of earlier builds, which let a later build (another
model version, other profiles, another machine of the same GPU) skip most of its tuning. It is
fetched from the shared location before a build and published back after it.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from ...files import atomic_write, cache_root, exclusive_lock, matches_sha256, sha256_file
from .metadata import PlanMetadata, RuntimeInfo, cache_key, metadata_path, timing_cache_key
from .profiles import Profile

log = logging.getLogger(__name__)

# (plan path to write, timing cache file to read and update) -> the plan's metadata
Builder = Callable[[Path, Path], PlanMetadata]


class EngineCache:
    def __init__(self, shared: Optional[str] = None, local: Optional[Path] = None,
                 lease_seconds: float = 900, poll_seconds: float = 5):
        self.shared = shared.rstrip("/") if shared else None
        self.local = Path(local) if local else cache_root() / "engines"
        if self.shared and "://" not in self.shared and Path(self.shared).resolve() == self.local.resolve():
            # The local cache named as the shared one: publishing a plan would copy it onto itself
            # (emptying it); it is simply the local cache.
            self.shared = None
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds

    @staticmethod
    def key(onnx_sha256: str, runtime: RuntimeInfo, profiles: Sequence[Profile], precision: str,
            layout: str = "padded") -> str:
        return cache_key(onnx_sha256, runtime, list(profiles), precision, layout)

    @staticmethod
    def timing_key(runtime: RuntimeInfo) -> str:
        return timing_cache_key(runtime)

    def local_plan(self, key: str) -> Path:
        return self.local / f"{key}.plan"

    def local_timing_cache(self, timing_key: str) -> Path:
        return self.local / f"timing-{timing_key}.cache"

    def get_or_build(self, key: str, build: Builder, timing_key: str = "default") -> Path:
        """The local path of the plan ``key``: cached here, fetched from the shared location, or
        built now by ``build`` (with the timing cache ``timing_key``)."""
        plan = self.local_plan(key)
        if _valid_local(plan):
            return plan
        with exclusive_lock(self.local / f".{key}.lock"):
            if _valid_local(plan):
                return plan
            if self.shared and self._fetch_shared(key, plan):
                return plan
            if self.shared and self._wait_for_other_builder(key, plan):
                return plan
            timing = self.local_timing_cache(timing_key)
            if self.shared:
                self._fetch_timing_cache(timing_key, timing)
            try:
                self._build_local(key, plan, timing, build)
            except BaseException:
                if self.shared:  # other machines must not wait for a build that failed
                    self._release_lease(key)
                raise
            if self.shared:
                self._publish_shared(key, plan, timing_key, timing)
        return plan

    # -- local -------------------------------------------------------------------------------
    def _build_local(self, key: str, plan: Path, timing: Path, build: Builder) -> None:
        self.local.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self.local))
        try:
            staged = stage / plan.name
            meta = build(staged, timing)
            if not meta.plan_sha256:
                meta.plan_sha256 = sha256_file(staged)
            _publish_local(staged, plan, meta)
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    # -- shared ------------------------------------------------------------------------------
    def _shared_path(self, key: str, suffix: str = ".plan") -> str:
        from apache_beam.io.filesystems import FileSystems

        assert self.shared is not None
        return FileSystems.join(self.shared, f"{key}{suffix}")

    def _fetch_shared(self, key: str, plan: Path) -> bool:
        from apache_beam.io.filesystems import FileSystems

        meta_url = self._shared_path(key, ".plan.json")
        if not FileSystems.exists(meta_url):
            return False
        meta = PlanMetadata.from_json(_read(meta_url).decode())
        self.local.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", dir=self.local)
        os.close(fd)
        try:
            with FileSystems.open(self._shared_path(key)) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            if sha256_file(tmp) != meta.plan_sha256:
                log.warning("shared plan %s does not match its metadata; ignoring it", self._shared_path(key))
                return False
            _publish_local(Path(tmp), plan, meta)
            log.info("engine plan %s fetched from %s", key, self.shared)
            return True
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def _wait_for_other_builder(self, key: str, plan: Path) -> bool:
        """If another machine holds a fresh build lease, wait for its plan; else take the lease."""
        from apache_beam.io.filesystems import FileSystems

        lease = self._shared_path(key, ".building")
        deadline = time.monotonic() + self.lease_seconds
        while FileSystems.exists(lease):
            try:
                holder = json.loads(_read(lease))
                age = time.time() - float(holder["since"])
            except Exception:  # unreadable lease: treat as stale
                age = self.lease_seconds + 1
            if age > self.lease_seconds or time.monotonic() > deadline:
                log.warning("build lease %s is stale (%.0f s); building here", lease, age)
                break
            log.info("waiting for %s to finish building plan %s", holder.get("host"), key)
            time.sleep(self.poll_seconds)
            if self._fetch_shared(key, plan):
                return True
        with FileSystems.create(lease) as f:
            f.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}).encode())
        return False

    def _fetch_timing_cache(self, timing_key: str, local: Path) -> None:
        """Take the shared timing cache when it knows more than ours (it is only ever extended)."""
        from apache_beam.io.filesystems import FileSystems

        url = self._shared_path(f"timing-{timing_key}", ".cache")
        try:
            if not FileSystems.exists(url):
                return
            data = _read(url)
        except Exception as e:  # a timing cache only saves time: never fail a build for it
            log.warning("could not read the shared timing cache %s: %s", url, e)
            return
        if not local.is_file() or len(data) > local.stat().st_size:
            atomic_write(local, data)
            log.info("timing cache %s fetched from %s (%d bytes)", timing_key, self.shared, len(data))

    def _publish_shared(self, key: str, plan: Path, timing_key: str, timing: Path) -> None:
        from apache_beam.io.filesystems import FileSystems

        try:
            with open(plan, "rb") as src, FileSystems.create(self._shared_path(key)) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            with FileSystems.create(self._shared_path(key, ".plan.json")) as dst:
                dst.write(Path(metadata_path(plan)).read_bytes())
            log.info("engine plan %s published to %s", key, self.shared)
            if timing.is_file():
                with FileSystems.create(self._shared_path(f"timing-{timing_key}", ".cache")) as dst:
                    dst.write(timing.read_bytes())
        finally:
            self._release_lease(key)

    def _release_lease(self, key: str) -> None:
        from apache_beam.io.filesystems import FileSystems

        lease = self._shared_path(key, ".building")
        if FileSystems.exists(lease):
            FileSystems.delete([lease])


def _publish_local(staged: Path, plan: Path, meta: PlanMetadata) -> None:
    """Plan first, metadata last: the metadata is the commit marker, so a reader that sees it sees a
    whole plan. The plan was checked against ``meta.plan_sha256`` by whoever staged it."""
    os.replace(staged, plan)
    atomic_write(Path(metadata_path(plan)), meta.to_json().encode())


def _valid_local(plan: Path) -> bool:
    """A whole, uncorrupted plan (hashed once per version of the file: ``files.matches_sha256``)."""
    meta_file = Path(metadata_path(plan))
    if not (plan.is_file() and meta_file.is_file()):
        return False
    try:
        meta = PlanMetadata.from_json(meta_file.read_text())
    except (ValueError, TypeError):
        return False
    if meta.plan_sha256 and not matches_sha256(plan, meta.plan_sha256):
        log.warning("cached plan %s does not match its metadata; rebuilding", plan)
        return False
    return True


def _read(url: str) -> bytes:
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(url) as f:
        return f.read()
