"""Beam YAML provider definitions shipped with the package."""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def providers_path(remote: bool = False) -> Path:
    return HERE / ("remote_providers.yaml" if remote else "providers.yaml")
