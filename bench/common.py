"""What the benchmarks share: the machine's name, SST-2's phrases and texts of other lengths, a
command timed as a user runs it, rows counted in what it wrote, one Beam pipeline timed from its
own metrics (text files -> transform -> count), a worker pool started for a run, and the results as
JSON."""
from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

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


def missing_ids(path: str, rows: int) -> dict:
    """Which of the ids 0..rows-1 (the inputs' ``id`` column) the Parquet files at ``path`` lack,
    as runs of consecutive ids: where rows were lost tells which step lost them (a whole Beam batch,
    a row group, scattered rows)."""
    import numpy as np
    import pyarrow.parquet as pq

    ids = [pq.read_table(name, columns=["id"]).column("id").to_numpy() for name in sorted(glob.glob(path))]
    seen = np.unique(np.concatenate(ids)) if ids else np.array([], dtype=np.int64)
    missing = np.setdiff1d(np.arange(rows), seen)
    if not missing.size:
        return {"missing": 0}
    breaks = np.flatnonzero(np.diff(missing) != 1)
    starts = np.concatenate([missing[:1], missing[breaks + 1]])
    lengths = np.concatenate([missing[breaks], missing[-1:]]) - starts + 1
    return {"missing": int(missing.size), "runs": int(starts.size), "longest_run": int(lengths.max()),
            "first_runs": [[int(a), int(n)] for a, n in zip(starts[:20], lengths[:20])],
            "run_lengths": {int(n): int(c) for n, c in zip(*np.unique(lengths, return_counts=True))}}


def timed(cmd: list[str], env: dict | None = None, cwd: Path = ROOT, timeout: float = 3600) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return seconds, proc.stderr


class GpuBusy:
    """How busy GPU 0 was while a command ran: `nvidia-smi`'s utilization (the share of time a
    kernel was running) sampled every 200 ms in a process beside the command. No samples (no GPU, no
    nvidia-smi) gives None: the figure is reported only where it was measured.

    Example::

        with GpuBusy() as busy:
            timed(cmd)
        busy.summary()  # {"gpu_busy_mean": 71.2, "gpu_busy_p50": 88.0, "gpu_samples": 240} or {}
    """

    def __init__(self, interval_ms: int = 200):
        self.interval_ms = interval_ms
        self.samples: list[float] = []
        self._proc: Optional[subprocess.Popen] = None

    def __enter__(self) -> "GpuBusy":
        try:
            self._proc = subprocess.Popen(
                ["nvidia-smi", "--id=0", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                 f"-lms={self.interval_ms}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        except OSError:
            self._proc = None
        return self

    def __exit__(self, *exc) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        out, _ = self._proc.communicate(timeout=10)
        self.samples = [float(line) for line in out.split() if line.strip().replace(".", "", 1).isdigit()]

    def summary(self) -> dict:
        if not self.samples:
            return {}
        ordered = sorted(self.samples)
        return {"gpu_busy_mean": sum(ordered) / len(ordered), "gpu_busy_p50": ordered[len(ordered) // 2],
                "gpu_samples": len(ordered)}


# One timed Beam pipeline (text files -> transform -> a counting step). The source is what production
# pipelines read: text files, sharded so that several workers can read at once, not a beam.Create whose
# rows are pickled into the pipeline. Besides the wall time, from Beam's own metrics: model loading,
# time inside RunInference's run_inference calls, when the first and the last row came out.


@dataclass
class PipelineTiming:
    rows: int
    seconds: float  # p.run() to finish: pipeline submission, model load, every row
    first_row_s: Optional[float] = None  # from p.run() to the first row out
    last_row_s: Optional[float] = None
    load_model_s: Optional[float] = None  # summed over the processes that loaded a model
    inference_s: Optional[float] = None  # summed time inside run_inference (tokenize + backend)
    batches: Optional[int] = None

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    @property
    def steady_rate(self) -> Optional[float]:
        """Rows per second between the first and the last row out (start-up excluded)."""
        if self.first_row_s is None or self.last_row_s is None or self.last_row_s <= self.first_row_s:
            return None
        return self.rows / (self.last_row_s - self.first_row_s)

    def summary(self) -> str:
        parts = [f"{self.rows} rows in {self.seconds:.2f} s = {self.rate:.0f}/s"]
        if self.first_row_s is not None:
            parts.append(f"first row out at {self.first_row_s:.2f} s, last at {self.last_row_s:.2f} s")
        if self.steady_rate:
            parts.append(f"steady {self.steady_rate:.0f}/s")
        if self.load_model_s is not None:
            parts.append(f"model load {self.load_model_s:.2f} s")
        if self.inference_s is not None:
            parts.append(f"in run_inference {self.inference_s:.2f} s over {self.batches} batches")
        return "; ".join(parts)


def read_sst2(data: Path, rows: Optional[int] = None) -> list[str]:
    """The phrases of ``data/dev.tsv`` (SST-2), repeated or cut to ``rows`` when given."""
    from scripts.sst2 import read_tsv

    texts = [t for t, _ in read_tsv(Path(data) / "dev.tsv")]
    if rows is None:
        return texts
    return (texts * (-(-rows // len(texts))))[:rows]


def write_shards(texts: Sequence[str], folder: Path, shards: int) -> str:
    """Texts one per line in ``shards`` files; returns the glob that reads them all."""
    folder.mkdir(parents=True, exist_ok=True)
    per = -(-len(texts) // shards)
    for i in range(shards):
        chunk = texts[i * per:(i + 1) * per]
        (folder / f"texts-{i:05d}.txt").write_text("".join(t.replace("\n", " ") + "\n" for t in chunk),
                                                   encoding="utf-8")
    return str(folder / "texts-*.txt")


def write_parquet_shards(texts: Sequence[str], folder: Path, shards: int, row_group: int) -> str:
    """Texts as Parquet files (columns ``id``, ``text``) with row groups of ``row_group`` rows, which
    ``ReadFromParquetBatched`` reads one table each; returns the glob that reads them all."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    per = -(-len(texts) // shards)
    for i in range(shards):
        chunk = list(texts[i * per:(i + 1) * per])
        table = pa.table({"id": pa.array(range(i * per, i * per + len(chunk)), pa.int64()), "text": chunk})
        pq.write_table(table, folder / f"texts-{i:05d}.parquet", row_group_size=row_group)
    return str(folder / "texts-*.parquet")


def timed_pipeline(texts: Sequence[str], transform_factory: Callable[[], object],
                   pipeline_args: Sequence[str] = (), shards: int = 16,
                   metrics_namespace: str = "", runner: Optional[object] = None,
                   parquet_row_group: int = 0) -> PipelineTiming:
    """Run ``ReadFromText(shards of texts) | transform`` on the FnApiRunner and time it, or with
    ``parquet_row_group``, ``ReadFromParquetBatched(Parquet shards) | transform``, whose elements are
    Arrow tables of that many rows (a table counts its rows).

    Checks that every row came out. ``metrics_namespace``: the ModelHandler's metrics namespace
    (RunInference prefixes nothing when one RunInference is in the pipeline). ``runner``: a runner
    object instead (e.g. a FnApiRunner whose workers come from a worker pool)."""
    import apache_beam as beam
    from apache_beam.metrics import Metrics
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions

    with tempfile.TemporaryDirectory() as tmp:
        if parquet_row_group:
            pattern = write_parquet_shards(texts, Path(tmp), shards, parquet_row_group)
            source = beam.io.ReadFromParquetBatched(pattern)
        else:
            source = beam.io.ReadFromText(write_shards(texts, Path(tmp), shards))
        p = beam.Pipeline(runner=runner, options=PipelineOptions(["--runner=FnApiRunner", *pipeline_args]))

        class CountRows(beam.DoFn):
            """Counts rows and notes when a bundle's first and last rows came out, on the wall clock
            (comparable across processes). Per bundle, not per row: looking a metric up for every
            row cost ~7 us a row on the CPU box, which the benchmark would have charged to the
            transform under test."""

            def __init__(self):
                self._rows = Metrics.counter("bench", "rows_out")
                self._out_ms = Metrics.distribution("bench", "out_ms")

            def start_bundle(self):
                self._n, self._first, self._last = 0, None, None

            def process(self, element):
                self._last = time.time()
                if self._first is None:
                    self._first = self._last
                self._n += element.num_rows if parquet_row_group else 1

            def finish_bundle(self):
                if self._n:
                    self._rows.inc(self._n)
                    self._out_ms.update(int(self._first * 1000))
                    self._out_ms.update(int(self._last * 1000))

        _ = p | source | transform_factory() | beam.ParDo(CountRows())
        start = time.perf_counter()
        t0 = time.time()
        result = p.run()
        result.wait_until_finish()
        seconds = time.perf_counter() - start
    metrics = result.metrics()
    counted = metrics.query(MetricsFilter().with_name("rows_out"))["counters"]
    assert counted and counted[0].committed == len(texts), (counted, len(texts))
    timing = PipelineTiming(len(texts), seconds)
    out = metrics.query(MetricsFilter().with_name("out_ms"))["distributions"]
    if out:
        d = out[0].committed
        timing.first_row_s, timing.last_row_s = d.min / 1000 - t0, d.max / 1000 - t0
    if metrics_namespace:
        dists = {r.key.metric.name: r.committed for r in
                 metrics.query(MetricsFilter().with_namespace(metrics_namespace))["distributions"]}
        load = dists.get("load_model_latency_milli_secs")
        infer = dists.get("inference_batch_latency_micro_secs")
        if load is not None:
            timing.load_model_s = load.sum / 1000
        if infer is not None:
            timing.inference_s, timing.batches = infer.sum / 1e6, infer.count
    return timing


@contextlib.contextmanager
def worker_pool(workers: int, warm_cuda: bool = False, preload: str = "") -> Iterator[str]:
    """Start `beam-tensorrt worker-pool --prestart N` and yield its address (HOST:PORT for
    ``--environment_type=EXTERNAL``) once its N workers are ready; stop it afterwards.
    ``preload``: ClassifyText's config as JSON, loaded by each worker before the job."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "pool.log"
        cmd = [sys.executable, "-m", "beam_tensorrt.cli", "worker-pool", "--port", "0", "--prestart", str(workers)]
        cmd += (["--warm-cuda"] if warm_cuda else []) + (["--preload", preload] if preload else [])
        pool = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
        try:
            assert pool.stdout is not None
            port = re.search(r"listening on [\d.]+:(\d+)", pool.stdout.readline())
            assert port, log.read_text()[-3000:]
            deadline = time.monotonic() + 300
            while len(re.findall(r"SDK worker process \d+ ready", log.read_text())) < workers:
                assert pool.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.2)
            yield f"127.0.0.1:{port.group(1)}"
        finally:
            pool.send_signal(signal.SIGTERM)
            pool.wait(timeout=60)
