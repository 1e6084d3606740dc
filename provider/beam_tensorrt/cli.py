"""The beam-tensorrt command: classify files, export checkpoints, build engines, serve ClassifyText.

Every sub-command is registered here with the function that runs it; each imports what it needs only
when it runs, so ``--help`` stays fast. A user's mistake ends in one line on stderr that names the
cause and what to do, and exit status 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
import threading
import time
from typing import Callable, Optional, Sequence

from .logs import quiet_logging

DESCRIPTION = "GPU BERT text classification for Apache Beam: classify files, serve ClassifyText to Beam YAML and Java."
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, ImportError)


def user_error(e: BaseException) -> Optional[str]:
    """The one-line message for a user's mistake, or None for anything else."""
    from .formats import RejectedRow

    text = str(e)
    found = re.search(r"RejectedRow: (.*)", text)  # raised inside the pipeline, re-raised by the runner
    if isinstance(e, RejectedRow) or found:
        message = re.sub(r"\s*\[while running '[^']*'\]\s*$", "", found.group(1) if found else text).strip()
        return message.replace("set allow_empty_text", "pass --allow-empty-text")
    if isinstance(e, USER_ERRORS):
        return text.strip().splitlines()[0] if text.strip() else type(e).__name__
    return None


# -- classify ------------------------------------------------------------------------------------

class ProgressReporter:
    """Rows done, rows/s and time left while a job runs: a bar on a terminal, a line every
    ``interval`` seconds otherwise; then one summary line."""

    def __init__(self, total: int, stream=sys.stderr, interval: float = 10.0):
        self.total, self.stream, self.interval = total, stream, interval
        self.tty = stream.isatty()
        self.start = time.monotonic()
        self._stop: threading.Event | None = None

    def line(self, done: int, errors: int) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-6)
        rate = (done + errors) / elapsed
        left = max(self.total - done - errors, 0)
        eta = f", ~{_duration(left / rate)} left" if rate > 0 and left else ""
        share = f" / {self.total:,} ({100 * (done + errors) / self.total:.0f}%)" if self.total else ""
        errs = f", {errors:,} {_rows(errors)} rejected" if errors else ""
        return f"{done + errors:,}{share} {_rows(done + errors)} done{errs}, {rate:,.0f} rows/s{eta}"

    def begin(self) -> None:
        from .jobs import Progress

        self.start = time.monotonic()
        self._stop = threading.Event()

        def run():
            period = 0.5 if self.tty else self.interval
            while not self._stop.wait(period):
                text = self.line(Progress.done, Progress.errors)
                if self.tty:
                    width = 24
                    filled = int(width * min(1.0, (Progress.done + Progress.errors) / self.total)) if self.total else 0
                    self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {text}\x1b[K")
                else:
                    self.stream.write(f"beam-tensorrt: {text}\n")
                self.stream.flush()

        threading.Thread(target=run, daemon=True, name="progress").start()

    def end(self) -> None:
        if self._stop is not None:
            self._stop.set()
            if self.tty:
                self.stream.write("\r\x1b[K")
                self.stream.flush()


def _rows(n: int) -> str:
    return "row" if n == 1 else "rows"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def cmd_classify(args) -> int:
    from .formats import check_paths

    check_paths(args.input, args.output, args.errors)  # a mistake here is reported before Beam's import
    from .jobs import classify_file, count_rows

    config = dict(text_field=args.text_field, backend=args.backend, label_field=args.label_field,
                  score_field=args.score_field, max_seq_len=args.max_seq_len, max_batch_size=args.batch_size,
                  min_batch_size=args.batch_size,  # a bounded file: full batches, no latency to trade
                  allow_empty_text=args.allow_empty_text)
    if args.model:
        config["model"] = args.model
    if args.engine_cache:
        config["engine_cache"] = args.engine_cache
    reporter = ProgressReporter(0, interval=args.progress_every)
    start = time.monotonic()

    def on_start():
        reporter.total = count_rows(args.input)
        reporter.begin()

    try:
        counts = classify_file(args.input, args.output, errors_path=args.errors, runner=args.runner,
                               pipeline_args=[a for a in args.beam_options if a != "--"], on_start=on_start, **config)
    finally:
        reporter.end()
    seconds = time.monotonic() - start
    done = counts["classified"]
    errors = f"; {counts['errors']:,} {_rows(counts['errors'])} -> {args.errors}" if args.errors else ""
    print(f"beam-tensorrt: classified {done:,} {_rows(done)} -> {args.output}{errors} in {seconds:.1f} s "
          f"({(done + counts['errors']) / max(seconds, 1e-6):,.0f} rows/s)", file=sys.stderr)
    return 0


def _add_classify(sub) -> None:
    p = sub.add_parser("classify", help="classify a TSV, CSV, JSON-lines, text or Parquet file (a local Beam pipeline)",
                       description="Run ClassifyText over a file and write JSON lines (every input field + label + "
                                   "score). The input format follows the extension: .tsv, .csv (header row), "
                                   ".jsonl/.json (one object a line), .txt (one text a line), .parquet (classified "
                                   "a row group at a time). Paths may be local or any Beam filesystem (gs://, s3://...).")
    p.add_argument("--input", required=True, help="input file")
    p.add_argument("--output", required=True, help="output file, JSON lines (.jsonl)")
    p.add_argument("--errors", default=None, help="write rows that cannot be classified here (JSON lines, with the "
                                                  "reason) and keep going; without it the first such row stops the job")
    p.add_argument("--text-field", default="text", help="field holding the text (default: text)")
    p.add_argument("--model", default=None, help="named model or artifact directory (default: sentiment-minilm)")
    p.add_argument("--backend", default="auto", help="auto, onnxruntime, tensorrt or torch (default: auto)")
    p.add_argument("--label-field", default="label", help="output field for the label (default: label)")
    p.add_argument("--score-field", default="score", help="output field for its probability (default: score)")
    p.add_argument("--max-seq-len", type=int, default=128, help="tokens kept per text (default: 128)")
    p.add_argument("--batch-size", type=int, default=256, help="rows per Beam batch (default: 256; Parquet: its row groups are the batches)")
    p.add_argument("--allow-empty-text", action="store_true", help="classify empty texts instead of rejecting them")
    p.add_argument("--engine-cache", default=None, help="TensorRT: where built plans are shared")
    p.add_argument("--progress-every", type=float, default=10.0, metavar="SECONDS",
                   help="seconds between progress lines when stderr is not a terminal (default: 10)")
    p.add_argument("--runner", default="FnApiRunner",
                   help="Beam runner (default: FnApiRunner, Beam's local runner in this process)")
    p.add_argument("beam_options", nargs=argparse.REMAINDER,
                   help="after --: Beam pipeline options, e.g. -- --s3_region_name=eu-west-1 for s3:// paths")
    p.set_defaults(func=cmd_classify)


# -- the other commands --------------------------------------------------------------------------

def cmd_export(args) -> int:
    from .tooling.export import export_checkpoint

    artifact = export_checkpoint(args.checkpoint, args.out, opset=args.opset, verify=not args.no_verify)
    print(f"wrote {artifact.path} (labels: {', '.join(artifact.manifest.labels)})")
    return 0


def cmd_model(args) -> int:
    from .models import resolve_model

    print(resolve_model(args.name).path)
    return 0


def cmd_config_reference(args) -> int:
    from .reference import config_reference_markdown

    print(config_reference_markdown())
    return 0


def cmd_yaml_providers(args) -> int:
    from .yaml import providers_path

    print(providers_path(remote=args.remote))
    return 0


def cmd_build(args) -> int:
    from pathlib import Path

    from .models import resolve_model
    from .tooling.engine import build_artifact_engine

    artifact = resolve_model(args.artifact)
    meta = build_artifact_engine(artifact, Path(args.out), precision=args.precision, max_seq_len=args.max_seq_len,
                                 max_batch=args.max_batch, trt_module=args.trt_module,
                                 timing_cache=Path(args.timing_cache) if args.timing_cache else None)
    print(meta.to_json())
    return 0


def cmd_serve(args) -> int:
    from .expansion.service import TlsConfig, serve

    if bool(args.tls_cert) != bool(args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    if args.tls_client_ca and not args.tls_cert:
        raise ValueError("--tls-client-ca needs --tls-cert and --tls-key")
    tls = TlsConfig(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    logging.getLogger("beam_tensorrt").setLevel(logging.INFO)
    return serve(args.host, args.port, args.environment, args.environment_config, args.grace, tls,
                 args.max_expansion_seconds)


def cmd_yaml(args) -> int:
    import importlib
    import os

    # Before Beam's YAML imports RunInference, so that it comes without torch (see that module).
    importlib.import_module(f"{__package__}.beam_inference")
    from apache_beam.yaml import main as yaml_main

    if not os.path.isfile(args.pipeline):
        raise FileNotFoundError(f"pipeline {args.pipeline!r}: no such file")

    beam_args = list(args.beam_options)
    if not any(a.startswith("--runner") for a in beam_args):
        beam_args.append("--runner=FnApiRunner")  # local; Beam's default would first download Prism
    from jinja2.exceptions import UndefinedError

    try:
        yaml_main.run(argv=[f"--yaml_pipeline_file={args.pipeline}", *beam_args])
    except UndefinedError as e:  # a {{ variable }} the command line did not give
        raise ValueError(f"{args.pipeline}: {e}; give it with --jinja_variables='{{\"NAME\": \"VALUE\"}}'") from e
    return 0


def cmd_flink_job_server(args) -> int:
    from .runners.flink import classpath, serve

    if args.print_classpath:
        print(classpath(say=lambda msg: print(msg, file=sys.stderr)))
        return 0
    return serve(args.port, args.host, args.flink_master, args.heap, args.parallelism)


def cmd_worker_pool(args) -> int:
    from .expansion.service import serve_worker_pool
    from .formats import UsageError

    if args.prestart < 0:
        raise UsageError(f"--prestart must be 0 or more, not {args.prestart}")
    logging.getLogger("beam_tensorrt").setLevel(logging.INFO)
    return serve_worker_pool(args.host, args.port, args.python, args.start_timeout, args.prestart, args.warm_cuda,
                             args.preload or "")


def _add_others(sub) -> None:
    p = sub.add_parser("export", help="turn a Hugging Face sequence-classification checkpoint into an artifact",
                       description="Export a local Hugging Face checkpoint (BERT, DistilBERT, RoBERTa, MiniLM) to an "
                                   "artifact directory: ONNX, tokenizer, manifest. Needs torch: "
                                   "pip install 'beam-tensorrt[export]'.")
    p.add_argument("checkpoint", help="checkpoint directory (config.json, weights, tokenizer.json)")
    p.add_argument("--out", required=True, help="artifact directory to write")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    p.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime vs PyTorch logits check")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("model", help="build a named model's artifact (once) and print where it is",
                       description="Assemble a named model's artifact in the cache directory on first use "
                                   "(no torch) and print its path.")
    p.add_argument("action", choices=["build", "path"], help="build and path do the same: the path is printed")
    p.add_argument("name", nargs="?", default="sentiment-minilm", help="model name (default: sentiment-minilm)")
    p.set_defaults(func=cmd_model)

    p = sub.add_parser("config-reference", help="print ClassifyText's configuration reference (Markdown)",
                       description="Print the table of ClassifyText's configuration fields, as in the README.")
    p.set_defaults(func=cmd_config_reference)

    p = sub.add_parser("yaml-providers", help="print the path of the Beam YAML providers file in the package",
                       description="Print the path of the Beam YAML providers file shipped in the package, for "
                                   "`providers: [{include: PATH}]`.")
    p.add_argument("--remote", action="store_true", help="the `type: remote` providers file (needs `serve`)")
    p.set_defaults(func=cmd_yaml_providers)

    p = sub.add_parser("build", help="build a TensorRT plan for this GPU from an artifact (needs TensorRT)",
                       description="Build a TensorRT plan for this GPU. Optional: workers also build on an "
                                   "engine-cache miss.")
    p.add_argument("artifact", help="artifact directory, or a named model (sentiment-minilm)")
    p.add_argument("--out", required=True, help="plan file to write (metadata goes to PLAN.json)")
    p.add_argument("--precision", choices=["fp16", "fp32"], default="fp16", help="(default: fp16)")
    p.add_argument("--max-seq-len", type=int, default=128, help="longest sequence the plan accepts (default: 128)")
    p.add_argument("--max-batch", type=int, default=256,
                   help="most rows per call; profiles scale it down for long text (default: 256)")
    p.add_argument("--timing-cache", default=None, help="timing cache file to read and update (speeds up rebuilds)")
    p.add_argument("--trt-module", default=None, help="tensorrt, tensorrt_rtx or tensorrt_rtx_bindings "
                                                      "(default: the first found)")
    p.set_defaults(func=cmd_build)

    from .expansion.environments import ENVIRONMENTS, describe

    p = sub.add_parser("serve", help="run the expansion service (Beam YAML `type: remote`, Java, other SDKs)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Serve ClassifyText over Beam's expansion API (gRPC).\n\n"
                                   "Environments attached to expanded transforms (--environment):\n" + describe())
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=8097, help="port (default: 8097; 0 picks a free one)")
    p.add_argument("--environment", default="worker-pool", choices=list(ENVIRONMENTS), help="(default: worker-pool)")
    p.add_argument("--environment-config", default=None, help="what --environment needs: HOST:PORT, a command, an image")
    p.add_argument("--grace", type=float, default=10.0, help="seconds to drain in-flight calls on SIGTERM (default: 10)")
    p.add_argument("--max-expansion-seconds", type=float, default=120.0,
                   help="server-side deadline of one expansion (default 120; a shorter client deadline wins)")
    p.add_argument("--tls-cert", default=None, help="PEM server certificate: serve TLS (needs --tls-key)")
    p.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    p.add_argument("--tls-client-ca", default=None,
                   help="PEM CA bundle: require client certificates signed by it (mutual TLS)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("yaml", help="run a Beam YAML pipeline (Beam's runner, without Beam's noise)",
                       description="Run a Beam YAML pipeline with Beam's own YAML runner (apache_beam.yaml.main), "
                                   "logging only what matters. Other options go to Beam, e.g. "
                                   "--jinja_variables='{\"input\": \"in.txt\"}' or --runner=PrismRunner "
                                   "(default: FnApiRunner, local).")
    p.add_argument("pipeline", help="the pipeline's YAML file")
    p.add_argument("beam_options", nargs=argparse.REMAINDER, help="Beam pipeline options")
    p.set_defaults(func=cmd_yaml)

    p = sub.add_parser("flink-job-server", help="run Beam's Flink job server (resolved with Maven) for portable pipelines",
                       description="Start Beam's Flink job server: an embedded Flink on this machine ([local]) or a "
                                   "Flink session cluster (--flink-master HOST:PORT). Pipelines then run with "
                                   "--runner=PortableRunner --job_endpoint=HOST:PORT. Needs a JDK 17 and Maven; "
                                   "the first run downloads the runner's jars (~160 MB) into ~/.m2. Without Maven, "
                                   "BEAM_TENSORRT_FLINK_CLASSPATH names the jars.")
    p.add_argument("--port", type=int, default=8099, help="job service port (default: 8099; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--flink-master", default="[local]",
                   help="[local] (default: an embedded Flink) or HOST:PORT of a Flink session cluster's REST endpoint")
    p.add_argument("--heap", default="1g", help="the job server JVM's heap (default: 1g)")
    p.add_argument("--parallelism", type=int, default=None,
                   help="Flink's default parallelism for jobs that set none (Java pipelines cannot set it)")
    p.add_argument("--print-classpath", action="store_true",
                   help="print the job server's classpath and exit (to copy its jars to a machine without Maven: "
                        "there, set BEAM_TENSORRT_FLINK_CLASSPATH)")
    p.set_defaults(func=cmd_flink_job_server)

    p = sub.add_parser("worker-pool", help="run a Python SDK worker pool for runners' EXTERNAL environment",
                       description="A Beam Python worker pool to run beside a runner's workers (Flink TaskManagers, "
                                   "Spark executors): the `external` environment of `serve`. Each worker is a process "
                                   "of --python; one that dies while starting fails the job with its output. "
                                   "--prestart keeps workers booted ahead of jobs.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=50000, help="port (default: 50000; 0 picks a free one)")
    p.add_argument("--python", default=None, help="interpreter of the workers (default: this one)")
    p.add_argument("--start-timeout", type=float, default=120.0,
                   help="seconds a new worker may take to import Beam and beam-tensorrt (default: 120)")
    p.add_argument("--prestart", type=int, default=0, metavar="N",
                   help="keep N workers started ahead of jobs, so that a job's workers begin at once (default: 0)")
    p.add_argument("--warm-cuda", action="store_true",
                   help="prestarted workers also make their CUDA context ahead of the job (GPU hosts)")
    p.add_argument("--preload", default=None, metavar="CONFIG",
                   help="ClassifyText's config as JSON, e.g. '{\"model\": \"sentiment-minilm\", \"backend\": "
                        "\"tensorrt\"}': workers load that model before a job; a job with the same model, backend, "
                        "max_seq_len, device, engine_cache and packing uses it")
    p.set_defaults(func=cmd_worker_pool)


COMMANDS: list[Callable] = [_add_classify, _add_others]


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = bool({"-v", "--verbose"} & set(argv[:1]))
    quiet_logging(verbose)  # before anything imports Beam, whose imports log
    parser = argparse.ArgumentParser(prog="beam-tensorrt", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level, Beam's warnings included")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("beam-tensorrt: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        message = user_error(e)
        if message is None or args.verbose:
            raise
        print(f"beam-tensorrt: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
