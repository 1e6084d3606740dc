#!/usr/bin/env python3
"""Throughput of the paths users run, end to end, against the backend alone in the same run.

Each path runs as a user runs it, in a process of its own, start-up included, and every output is
counted against its input (rows in == rows out + rows rejected):

  backend alone  the model's backend on the groups ClassifyText forms, tokenized beforehand: the
                 ceiling every path is compared to (on the first --baseline-rows rows)
  cli-parquet    beam-tensorrt classify --input in.parquet --output out.parquet
  cli-csv        beam-tensorrt classify --input in.csv --output out.jsonl
  cli-jsonl      beam-tensorrt classify --input in.jsonl --output out.jsonl
  yaml           beam-tensorrt yaml yaml_pipelines/classify_parquet.yaml (ReadFromParquet ->
                 ClassifyText -> WriteToParquet, ClassifyText in-process)
  yaml-remote    the same pipeline with ClassifyText from a running `beam-tensorrt serve`
                 (`type: remote`; its worker pool runs ClassifyText)
  yaml-csv       beam-tensorrt yaml: Beam's ReadFromCsv -> ClassifyText -> WriteToJson (Beam's own IO,
                 pandas), compared with cli-csv, and with
  yaml-files     the same with ReadFiles -> ClassifyText -> WriteFiles (the main job's readers and
                 writers as YAML transforms; the README's first YAML pipeline)
  yaml-files-parquet  ReadFiles -> ClassifyText -> WriteFiles on Parquet, compared with yaml (Beam's
                 ReadFromParquet / WriteToParquet) and cli-parquet
  java           java_examples/run_local.sh (Java SDK -> a Flink job server -> ClassifyText in the
                 service's worker pool) over a text file; needs Java and Maven. Compared with
  yaml-remote-text  the same texts through yaml_pipelines/classify_remote.yaml on the same job server
  yaml-text      beam-tensorrt yaml yaml_pipelines/classify_texts.yaml (text lines -> ClassifyText ->
                 JSON lines), batches of 256 rows, compared with
  yaml-run-inference  yaml_pipelines/classify_run_inference.yaml: the same with Beam YAML's own
                 RunInference and ClassifyText's model handler (ClassifyTextModelHandler)
                 (Beam's Flink job server, embedded Flink, started by this script: Prism 2.77 cannot
                 run the Python one, see README "Java pipelines")

Data: texts of each --lengths profile repeated to --rows rows (with an id column): SST-2 train
phrases (~10 tokens), sentences (phrases joined to ~40-60 tokens) and reviews (joined to ~128-300
tokens, cut at the model's max_seq_len), ``bench.common.LENGTH_PROFILES``; every path and the
backend alone run at each. Model: --model (a named model or an artifact directory, e.g.
bench/random_bert.py's BERT-base shape).

    python -m bench.user_paths --data ../shared/data/sst2 --rows 1000000 --backend tensorrt \\
        [--lengths phrases,sentences,reviews] [--paths cli-parquet,cli-csv,cli-jsonl,yaml,yaml-remote] \\
        [--json docs/bench/NAME.json]
    python -m bench.user_paths --plot docs/bench/NAME.json      # draws NAME.png beside it
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import CLI, LENGTH_PROFILES, GpuBusy, ROOT, count_output, device, missing_ids, texts_of_length, timed, write_json

PATHS = ("cli-parquet", "cli-csv", "cli-jsonl", "yaml", "yaml-remote", "yaml-csv", "yaml-files", "yaml-files-parquet", "java",
         "yaml-remote-text", "yaml-text", "yaml-run-inference")


def write_inputs(folder: Path, texts: list[str], rows: int, which: set[str]) -> dict[str, Path]:
    """The same rows as Parquet, CSV, JSON lines and text, built column-wise (no Python loop a row)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    index = pa.array(np.arange(rows) % len(texts))
    ids = pa.array(np.arange(rows, dtype=np.int64))
    text = pa.array(texts, pa.string()).take(index)
    files = {}
    if which & {"cli-parquet", "yaml", "yaml-remote", "yaml-files-parquet"}:
        files["parquet"] = folder / "in.parquet"
        pq.write_table(pa.table({"id": ids, "text": text}), files["parquet"], row_group_size=65536)
    if which & {"cli-csv", "yaml-csv", "yaml-files"}:
        files["csv"] = folder / "in.csv"
        pcsv.write_csv(pa.table({"id": ids, "text": text}), files["csv"])
    if "cli-jsonl" in which:
        escaped = pa.array([json.dumps(t, ensure_ascii=False) for t in texts], pa.string()).take(index)
        lines = pc.binary_join_element_wise('{"id": ', pc.cast(ids, pa.string()), ', "text": ', escaped, "}\n", "")
        lines = pc.cast(lines, pa.large_string())
        lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset:lines.offset + len(lines) + 1]
        files["jsonl"] = folder / "in.jsonl"
        with open(files["jsonl"], "wb") as f:  # the values' bytes, one after another: the lines
            f.write(memoryview(lines.buffers()[2])[offsets[0]:offsets[-1]])
    if which & {"java", "yaml-remote-text", "yaml-text", "yaml-run-inference"}:
        files["txt"] = folder / "in.txt"
        with open(files["txt"], "w", encoding="utf-8") as f:
            for i in range(rows):
                f.write(texts[i % len(texts)].replace("\n", " ") + "\n")
    return files


def backend_alone(model: str, backend: str, texts: list[str], rows: int, engine_cache: str | None,
                  precision: str = "fp16") -> dict:
    """The backend on exactly the groups ClassifyText forms for tables of 8,192 rows, tokenized
    beforehand (the first of three passes warms CUDA graphs and is not timed)."""
    from beam_tensorrt.backends import BackendOptions
    from beam_tensorrt.classifier import TextClassifier
    from beam_tensorrt.models import resolve_model
    from beam_tensorrt.tokenization import TextTokenizer

    artifact = resolve_model(model)
    start = time.perf_counter()
    clf = TextClassifier.open(artifact, backend, BackendOptions(engine_cache=engine_cache, precision=precision))
    opened = time.perf_counter() - start
    sample = [texts[i % len(texts)] for i in range(rows)]
    # The tokenizer alone, the host's share of the same groups: as this process has it (the Rust
    # tokenizer on every core here, unless RAYON_NUM_THREADS says), then the Python path on one core
    # (what each of the launchers' worker processes takes).
    speeds = {}
    for label, python_path in (("tokenizer_rows_per_s", None), ("tokenizer_python_core_rows_per_s", True)):
        if python_path is not None:
            try:
                clf.tokenizer = TextTokenizer(artifact.tokenizer_path, clf.tokenizer.max_seq_len, python_path=True)
            except TypeError:  # a tree before the Python path (a before/after pair)
                speeds[label] = float("nan")
                continue
        start = time.perf_counter()
        feeds = [batch.feeds(clf.session.input_names) for i in range(0, rows, 8192)
                 for _, batch in clf.groups(sample[i:i + 8192])]
        speeds[label] = rows / (time.perf_counter() - start)
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        for i in range(0, len(feeds), 64):
            clf.session.run_many(feeds[i:i + 64])
        seconds.append(time.perf_counter() - start)
    session = clf.session.name
    check = sample[:2000]
    truncated = sum(bool(p.truncated) for p in clf.classify(check)) / len(check)
    clf.close()
    del clf
    best = min(seconds[1:])
    return {"rows": rows, "seconds": best, "rows_per_s": rows / best, "open_s": opened, "session": session,
            "truncated_share": truncated, **speeds}


def yaml_pipeline(folder: Path, remote: str | None, text_input: bool = False, model: str = "",
                  batch_size: int = 0) -> Path:
    """yaml_pipelines/classify_parquet.yaml (or classify_remote.yaml for text, with ``model`` and
    ``batch_size`` set in ClassifyText's config), its provider made `type: remote` at ``remote``
    when given."""
    source = ROOT / "yaml_pipelines" / ("classify_remote.yaml" if text_input else "classify_parquet.yaml")
    text = source.read_text()
    if text_input:
        extra = f"\n        model: {json.dumps(model)}" + (f"\n        max_batch_size: {batch_size}" if batch_size else "")
        text = text.replace("truncated_field: truncated", "truncated_field: truncated" + extra, 1)
    if remote and not text_input:
        text = re.sub(r"providers:\n(.|\n)*", "providers:\n  - type: remote\n    config:\n"
                      f"      address: \"{remote}\"\n    transforms:\n"
                      "      ClassifyText: 'beam:schematransform:beam_tensorrt:classify_text:v1'\n", text)
    path = folder / (("remote-" if remote else "") + source.name)
    path.write_text(text)
    return path


def csv_pipeline(ours: bool, backend: str, model: str, out_format: str = "jsonl") -> str:
    """CSV -> ClassifyText -> JSON lines in Beam YAML, read and written by Beam's own transforms
    (ReadFromCsv, WriteToJson) or by ours (ReadFiles, WriteFiles, which also read Parquet and write
    ``out_format``), as the README's first YAML pipeline is written."""
    read, write = (("ReadFiles", "{path: '{{ input }}'}"), ("WriteFiles", f"{{path: '{{{{ output }}}}', format: {out_format}}}")) \
        if ours else (("ReadFromCsv", "{path: '{{ input }}'}"), ("WriteToJson", "{path: '{{ output }}'}"))
    transforms = "".join(f"      {name}: beam_tensorrt.jobs.transforms.{name}\n" for name in ("ReadFiles", "WriteFiles")
                         if ours)
    return (f"pipeline:\n  type: chain\n  transforms:\n    - type: {read[0]}\n      config: {read[1]}\n"
            f"    - type: ClassifyText\n      config: {{text_field: text, backend: {backend}, model: {json.dumps(model)}}}\n"
            f"    - type: {write[0]}\n      config: {write[1]}\n"
            f"providers:\n  - type: python\n    config: {{}}\n    transforms:\n"
            f"      ClassifyText: beam_tensorrt.ClassifyText\n{transforms}")


class Service:
    """A `beam-tensorrt serve --port 0` for the remote paths."""

    def __init__(self, folder: Path, env: dict, options: list[str]):
        self.log = folder / "serve.log"
        self.proc = subprocess.Popen(CLI + ["serve", "--port", "0", *options], stdout=subprocess.PIPE,
                                     stderr=open(self.log, "w"), text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        found = re.search(r"listening on [\d.]+:(\d+)", line)
        if not found:
            raise RuntimeError(f"the service did not start: {self.log.read_text()[-3000:]}")
        self.address = f"127.0.0.1:{found.group(1)}"

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="SST-2 folder (train.tsv)")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--model", default="sentiment-minilm", help="named model or artifact directory")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--paths", default="cli-parquet,cli-csv,cli-jsonl,yaml,yaml-remote")
    ap.add_argument("--lengths", default="phrases", help=f"text length profiles: {', '.join(LENGTH_PROFILES)}")
    ap.add_argument("--workers", default="auto", help="the CLI's --workers")
    ap.add_argument("--baseline-rows", type=int, default=300_000)
    ap.add_argument("--engine-cache", default=None, help="TensorRT plans shared by every path (default: a new folder)")
    ap.add_argument("--yaml-option", action="append", default=[], help="a Beam option for the YAML paths")
    ap.add_argument("--serve-option", action="append", default=[],
                    help="an option of `beam-tensorrt serve` for the remote paths, e.g. --serve-option=--worker-processes")
    ap.add_argument("--flink-parallelism", type=int, default=os.cpu_count() or 2,
                    help="the job server's parallelism for the java and yaml-remote-text paths")
    ap.add_argument("--text-batch-size", type=int, default=0,
                    help="ClassifyText's max_batch_size on the java and yaml-remote-text paths (0: ClassifyText's "
                         "default, as both ship)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--service-log", type=Path, default=None, help="keep the service's log here after the run")
    ap.add_argument("--plot", type=Path, default=None, help="draw this JSON file (needs matplotlib) and exit")
    args = ap.parse_args()
    if args.plot:
        return plot(args.plot)
    if args.data is None:
        ap.error("--data is required")
    paths = [p for p in args.paths.split(",") if p]
    unknown = set(paths) - set(PATHS)
    if unknown:
        ap.error(f"unknown paths {sorted(unknown)}; choose from {', '.join(PATHS)}")
    lengths = [p for p in args.lengths.split(",") if p]
    if set(lengths) - set(LENGTH_PROFILES):
        ap.error(f"unknown --lengths {sorted(set(lengths) - set(LENGTH_PROFILES))}; choose from {', '.join(LENGTH_PROFILES)}")
    folder = Path(tempfile.mkdtemp(prefix="user-paths-"))
    engine_cache = args.engine_cache or str(folder / "engines")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    config = ["--model", args.model, "--backend", args.backend, "--engine-cache", engine_cache]
    results: dict = {"rows": args.rows, "model": args.model, "backend": args.backend, "device": device(),
                     "workers": args.workers, "yaml_options": args.yaml_option, "serve_options": args.serve_option,
                     "text_batch_size": args.text_batch_size, "profiles": {}}
    try:
        service = Service(folder, env, args.serve_option) if {"yaml-remote", "java", "yaml-remote-text"} & set(paths) else None
        job_server = None
        try:
            if {"java", "yaml-remote-text"} & set(paths):
                from beam_tensorrt.runners.flink import FlinkJobServer

                job_server = FlinkJobServer(job_port=0, parallelism=args.flink_parallelism, heap="4g")
                args.job_endpoint = job_server.start(timeout=600)
                results["job_server"] = f"Beam Flink job server, embedded Flink, parallelism {args.flink_parallelism}"
            for profile in lengths:
                results["profiles"][profile] = run_profile(profile, paths, args, folder, engine_cache, env, config,
                                                           service)
        finally:
            if service:
                service.stop()
                if args.service_log:
                    shutil.copyfile(service.log, args.service_log)
            if job_server:
                job_server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print_table(results)
    write_json(args.json, results)
    return 0


def run_profile(profile: str, paths: list[str], args, folder: Path, engine_cache: str, env: dict,
                config: list[str], service) -> dict:
    """The backend alone and every path on texts of one length profile."""
    texts = texts_of_length(args.data, profile)
    result: dict = {"mean_words": sum(len(t.split()) for t in texts) / len(texts), "paths": {}}
    print(f"[{profile}] backend alone on {min(args.rows, args.baseline_rows):,} rows...", flush=True)
    result["backend_alone"] = backend_alone(args.model, args.backend, texts, min(args.rows, args.baseline_rows),
                                            engine_cache)
    alone = result["backend_alone"]["rows_per_s"]
    print(f"  {alone:,.0f} rows/s ({result['backend_alone']['session']}), "
          f"{result['backend_alone']['truncated_share']:.1%} of texts cut at max_seq_len; the tokenizer alone "
          f"(one process) {result['backend_alone']['tokenizer_rows_per_s']:,.0f} rows/s, its Python path on one core "
          f"{result['backend_alone']['tokenizer_python_core_rows_per_s']:,.0f}", flush=True)
    inputs = folder / profile
    inputs.mkdir()
    files = write_inputs(inputs, texts, args.rows, set(paths))
    for path in paths:
        out = folder / "out"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        cmd, pattern = command(path, files, out, config, args, service, folder)
        print(f"[{profile}] {path}: {' '.join(map(str, cmd))}", flush=True)
        try:
            with GpuBusy() as busy:
                seconds, log = timed(cmd, java_env(env, args, folder) if path == "java" else env)
        except (RuntimeError, subprocess.TimeoutExpired) as e:  # the other paths still run
            result["paths"][path] = {"error": str(e)[-3000:]}
            print(f"  FAILED: {str(e)[-3000:]}", flush=True)
            continue
        rows_out = count_output(pattern)
        errors = count_output(str(out / "errors*")) if glob.glob(str(out / "errors*")) else 0
        result["paths"][path] = {"seconds": seconds, "rows_out": rows_out, "rows_rejected": errors,
                                 "rows_per_s": args.rows / seconds, "vs_backend_alone": args.rows / seconds / alone,
                                 "command": " ".join(map(str, cmd)).replace(str(folder), "$TMP").replace(
                                     sys.executable, "python"),
                                 "log_tail": [line.replace(str(folder), "$TMP") for line in log.strip().splitlines()[-2:]],
                                 **busy.summary()}
        ok = "rows in == rows out" if rows_out + errors == args.rows else f"ROWS LOST: {rows_out + errors}"
        if rows_out + errors < args.rows and path in ("cli-parquet", "yaml", "yaml-remote"):  # Parquet, ids kept
            result["paths"][path]["missing_ids"] = missing_ids(pattern, args.rows)
            ok += f"; missing ids: {json.dumps(result['paths'][path]['missing_ids'])[:600]}"
        gpu = result["paths"][path].get("gpu_busy_mean")
        gpu = f", GPU busy {gpu:.0f}% (mean)" if gpu is not None else ""
        print(f"  {seconds:.1f} s, {args.rows / seconds:,.0f} rows/s, {args.rows / seconds / alone:.2f}x the "
              f"backend alone{gpu}; {ok}", flush=True)
    return result


def command(path: str, files: dict, out: Path, config: list[str], args, service, folder: Path):
    workers = ["--workers", args.workers]
    if path.startswith("cli-"):
        source = {"cli-parquet": "parquet", "cli-csv": "csv", "cli-jsonl": "jsonl"}[path]
        target = out / ("out.parquet" if source == "parquet" else "out.jsonl")
        return (CLI + ["classify", "--input", files[source], "--output", target, "--errors", out / "errors.jsonl",
                       *config, *workers], str(target))
    if path in ("yaml", "yaml-remote"):
        pipeline = yaml_pipeline(folder, service.address if path == "yaml-remote" else None)
        variables = {"input": str(files["parquet"]), "output": str(out / "classified"), "backend": args.backend,
                     "model": args.model}
        return (CLI + ["yaml", pipeline, f"--jinja_variables={json.dumps(variables)}", *args.yaml_option],
                str(out / "classified*"))
    if path == "yaml-remote-text":
        pipeline = yaml_pipeline(folder, None, text_input=True, model=args.model, batch_size=args.text_batch_size)
        variables = {"input": str(files["txt"]), "output": str(out / "remote"), "address": service.address}
        return (CLI + ["yaml", pipeline, f"--jinja_variables={json.dumps(variables)}", "--runner=PortableRunner",
                       f"--job_endpoint={args.job_endpoint}", "--environment_type=LOOPBACK"], str(out / "remote*"))
    if path in ("yaml-csv", "yaml-files", "yaml-files-parquet"):
        pipeline = folder / f"{path}.yaml"
        parquet = path == "yaml-files-parquet"
        pipeline.write_text(csv_pipeline(ours=path != "yaml-csv", backend=args.backend, model=args.model,
                                         out_format="parquet" if parquet else "jsonl"))
        variables = {"input": str(files["parquet" if parquet else "csv"]), "output": str(out / "labelled")}
        return (CLI + ["yaml", pipeline, f"--jinja_variables={json.dumps(variables)}", *args.yaml_option],
                str(out / "labelled*"))
    if path in ("yaml-text", "yaml-run-inference"):
        source = ROOT / "yaml_pipelines" / ("classify_texts.yaml" if path == "yaml-text" else "classify_run_inference.yaml")
        pipeline = folder / source.name
        # both at RunInference batches of 256 rows (the RunInference pipeline ships with 256), on
        # --model and --backend (the shipped pipelines take the default model)
        model = json.dumps(args.model)
        pipeline.write_text(source.read_text().replace(
            "    - type: ClassifyText\n",
            f"    - type: ClassifyText\n      config: {{max_batch_size: 256, model: {model}, backend: {args.backend}}}\n").replace(
            "            max_batch_size: 256\n", f"            max_batch_size: 256\n            model: {model}\n"))
        variables = {"input": str(files["txt"]), "output": str(out / "texts"), "backend": args.backend}
        return (CLI + ["yaml", pipeline, f"--jinja_variables={json.dumps(variables)}", *args.yaml_option],
                str(out / "texts*"))
    if path == "java":
        return ([str(ROOT / "java_examples" / "run_local.sh"), files["txt"], out / "labels.jsonl"],
                str(out / "labels.jsonl"))
    raise ValueError(path)


def java_env(env: dict, args, folder: Path) -> dict:
    """The Java example's environment: the bench's job server, model and batch size, and the
    `beam-tensorrt` its script starts, run by this interpreter (a machine may have no .venv)."""
    shim = folder / "bin" / "beam-tensorrt"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m beam_tensorrt.cli "$@"\n')
    shim.chmod(0o755)
    return dict(env, JOB_ENDPOINT=args.job_endpoint, BEAM_TENSORRT_BIN=str(shim.parent),
                JAVA_PIPELINE_ARGS=f"--model={args.model}" + (f" --maxBatchSize={args.text_batch_size}"
                                                              if args.text_batch_size else ""))


def print_table(results: dict) -> None:
    print(f"\n{results['rows']:,} rows, model {results['model']}, backend {results['backend']}, {results['device']}")
    for profile, result in results["profiles"].items():
        alone = result["backend_alone"]["rows_per_s"]
        print(f"\n{profile} (~{result['mean_words']:.0f} words, "
              f"{result['backend_alone']['truncated_share']:.1%} cut at max_seq_len)")
        print(f"{'path':<18}{'seconds':>10}{'rows/s':>12}{'vs alone':>10}{'GPU busy':>10}  rows out + rejected")
        print(f"{'backend alone':<18}{'':>10}{alone:>12,.0f}{1:>10.2f}")
        for name, r in result["paths"].items():
            if "error" in r:
                print(f"{name:<18}failed")
                continue
            busy = f"{r['gpu_busy_mean']:.0f}%" if "gpu_busy_mean" in r else "-"
            print(f"{name:<18}{r['seconds']:>10.1f}{r['rows_per_s']:>12,.0f}{r['vs_backend_alone']:>10.2f}{busy:>10}  "
                  f"{r['rows_out']:,} + {r['rows_rejected']:,}")
        paths = {k: v for k, v in result["paths"].items() if "error" not in v}
        for a, b in (("yaml", "cli-parquet"), ("yaml-remote", "yaml"), ("yaml-csv", "cli-csv"),
                     ("yaml-files", "cli-csv"), ("yaml-files", "yaml-csv"), ("yaml-files-parquet", "cli-parquet"),
                     ("yaml-files-parquet", "yaml"), ("java", "yaml-remote-text"),
                     ("yaml-run-inference", "yaml-text")):
            if a in paths and b in paths:
                print(f"{a} / {b}: {paths[a]['rows_per_s'] / paths[b]['rows_per_s']:.2f}x")


def plot(path: Path) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = json.loads(path.read_text())
    names, rates = [], []
    for profile, result in results["profiles"].items():
        names.append(f"{profile}: backend alone")
        rates.append(result["backend_alone"]["rows_per_s"])
        for name, r in result["paths"].items():
            if "error" not in r:
                names.append(f"{profile}: {name}")
                rates.append(r["rows_per_s"])
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(names) + 1.5))
    bars = ax.barh(names[::-1], rates[::-1], color=["#999999" if "alone" in n else "#4c72b0" for n in names[::-1]])
    for bar, rate in zip(bars, rates[::-1]):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {rate:,.0f}", va="center", fontsize=8)
    ax.set_xlabel("rows/s, end to end, start-up included")
    ax.set_title(f"{results['rows']:,} rows, {Path(results['model']).name}, {results['backend']}, {results['device']}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path.with_suffix(".png"), dpi=110)
    print(path.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
