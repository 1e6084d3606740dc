"""What the benchmarks share: the machine's name, SST-2's phrases, a command timed as a user runs it,
rows counted in what it wrote, and the results as JSON."""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "beam_tensorrt.cli"]


def device() -> str:
    try:
        from beam_tensorrt.backends.tensorrt.platform import gpu_info

        return gpu_info(0)[0]
    except Exception:
        import platform

        return f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def phrases(data: Path) -> list[str]:
    from scripts.sst2 import read_tsv

    return [text for text, _ in read_tsv(data / "train.tsv")]


# Text lengths users have, made from SST-2's phrases (deterministic: the same texts every run).
# phrases: SST-2 as it is (~10 tokens); sentences: phrases joined to 30-45 words (~40-60 tokens,
# news-sentence length); reviews: joined to 100-230 words, sentences ended with ". " (~128-300
# tokens, review-length paragraphs; cut at max_seq_len, 128 by default).
LENGTH_PROFILES = {"phrases": None, "sentences": (30, 45), "reviews": (100, 230)}


def texts_of_length(data: Path, profile: str, count: int = 50_000) -> list[str]:
    """``count`` texts of a ``LENGTH_PROFILES`` profile (phrases: all of SST-2 train's)."""
    import random

    base = phrases(data)
    words_range = LENGTH_PROFILES[profile]
    if words_range is None:
        return base
    rng = random.Random(f"{profile}-0")
    out = []
    for _ in range(count):
        target = rng.randint(*words_range)
        parts: list[str] = []
        words = 0
        while words < target:
            phrase = base[rng.randrange(len(base))].strip()
            parts.append(phrase[:1].upper() + phrase[1:] + ".")
            words += len(phrase.split())
        out.append(" ".join(parts))
    return out


def write_json(path: Path | None, results: dict) -> None:
    """The run's results as JSON at ``path`` (none: nothing written)."""
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2))


def count_output(path: str) -> int:
    import pyarrow.parquet as pq

    total = 0
    for name in sorted(glob.glob(path)):
        with open(name, "rb") as f:
            parquet = f.read(4) == b"PAR1"
        if parquet:
            total += pq.ParquetFile(name).metadata.num_rows
        else:
            with open(name, "rb") as f:
                total += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b""))
    return total


def timed(cmd: list[str], env: dict | None = None, cwd: Path = ROOT, timeout: float = 3600) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return seconds, proc.stderr
