"""Sub-commands registered beside the core ones; each imports its module only when run."""
from __future__ import annotations

COMMANDS: list = []
