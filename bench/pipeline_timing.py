"""One timed Beam pipeline: text files -> transform -> a counting step; shared by the benchmarks.

The source is what production pipelines read: text files (sharded, so several workers can read at
once), not a ``beam.Create`` whose rows are pickled into the pipeline. Besides the wall time the
run reports, from Beam's own metrics, where it went: model loading, time inside RunInference's
``run_inference`` calls, and when the first and the last row came out.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence


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
