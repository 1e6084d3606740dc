"""Artifacts on any Beam filesystem (gs://, s3://, hdfs://...): copied once into the local cache."""
from __future__ import annotations

import hashlib
from pathlib import Path

from .artifact import MANIFEST
from .files import cache_root, exclusive_lock, publish_directory, staging_dir


def fetch_artifact(url: str) -> Path:
    from apache_beam.io.filesystems import FileSystems

    url = url.rstrip("/")
    local = cache_root() / "remote" / hashlib.sha256(url.encode()).hexdigest()[:16]
    if (local / MANIFEST).is_file():
        return local
    with exclusive_lock(local.parent / f".{local.name}.lock"):
        if (local / MANIFEST).is_file():
            return local
        matches = FileSystems.match([url + "/*"])[0].metadata_list
        if not matches:
            raise FileNotFoundError(f"model artifact {url!r} is empty or does not exist")
        stage = staging_dir(local)
        for meta in matches:
            name = meta.path.rstrip("/").rsplit("/", 1)[-1]
            with FileSystems.open(meta.path) as src, open(stage / name, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        return publish_directory(stage, local, MANIFEST)
