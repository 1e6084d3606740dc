#!/usr/bin/env python3
"""GPU throughput of ClassifyText on each GPU backend vs Beam's stock handlers, one machine, one run.

Model: a BERT-base-sized encoder (12 x 768, random weights: speed only) written by
bench/random_bert.py. Data: SST-2 dev phrases repeated to --rows. Rows, in order:
  tokenizer          the Rust tokenizer alone (encode + pad into ClassifyText's length groups)
  open               opening each backend's session: TensorRT finds or builds its plan through the
                     engine cache (--engine-cache); PyTorch loads weights
  backend alone      each backend (fp16, CUDA graphs for hot shapes) on exactly the pre-tokenized
                     groups ClassifyText forms with it for a Beam batch: the ceiling. A backend
                     NAME packs several rows a sequence; NAME:padded runs padded length groups.
  ClassifyText       end to end in a Beam pipeline (FnApiRunner) reading sharded text files, per
                     backend: Beam batch as the baselines, a larger Beam batch, several SDK worker
                     processes sharing the GPU (how Dataflow/Flink/Spark run Python workers)
  ClassifyTextBatches  end to end, one SDK process, reading the same text from Parquet shards as Arrow
                     tables (ReadFromParquetBatched, row groups of --arrow-batches rows), one table
                     per inference batch; its groups are the larger Beam batch's (--arrow-batches)
  HF pipeline        Beam's HuggingFacePipelineModelHandler (Beam YAML's built-in RunInference
                     type), fp16, same Beam batch size, batch_size passed to the pipeline
  PyTorch keyed      Beam's documented pattern: a tokenizing Map (padding to max_seq_len) +
                     PytorchModelHandlerKeyedTensor, fp16
  TensorRT NumPy     the pattern this project started from: a tokenizing Map padding to 128 and
                     Beam's TensorRTEngineHandlerNumPy on a static batch-64 x 128 fp16 plan
                     (three inputs, so through the handler's inference_fn argument); --seed-baseline

Named scenarios set the flags of one question; flags given after them override:

    python -m bench.gpu_throughput --scenario NAME --artifact DIR --data DIR [more flags]

{scenarios}
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

NS = "BeamTensorRT_ClassifyText"


def flops(rows: int, seq: int, hidden: int, layers: int) -> float:
    """Forward FLOPs of a BERT encoder on a [rows, seq] batch: dense layers + attention."""
    dense = 2 * rows * seq * layers * (4 * hidden * hidden + 2 * hidden * 4 * hidden)
    attention = 2 * 2 * rows * layers * seq * seq * hidden
    return float(dense + attention)


PIPELINE_ARGS: list[str] = []

# name -> (question, flags)
SCENARIOS = {
    "backends": ("each GPU backend alone on ClassifyText's groups, then ClassifyText in one SDK process",
                 ["--backends", "tensorrt,torch", "--skip-baselines"]),
    "baselines": ("ClassifyText against Beam's stock handlers (HF pipeline, PyTorch keyed, TensorRT NumPy)",
                  ["--backends", "tensorrt,torch", "--seed-baseline"]),
    "one-process": ("ClassifyText and ClassifyTextBatches (Parquet row groups of 16,384) in one SDK process, 1M rows",
                    ["--skip-baselines", "--arrow-batches", "16384", "--long-rows", "1000000", "--long-processes", "1"]),
    "pool": ("8 SDK processes on 1M rows: spawned by the runner, prestarted, prestarted with the model preloaded",
             ["--skip-baselines", "--rows", "50000", "--workers", "", "--long-rows", "1000000", "--long-processes", "8",
              "--prestarted-pool", "--preload"]),
}
__doc__ = __doc__.format(scenarios="\n".join(f"    {name:<12} {question}" for name, (question, _) in SCENARIOS.items()))


def run_pipeline(texts, transform, extra_args=(), namespace="", runner=None, parquet_row_group=0):
    from bench.common import timed_pipeline

    return timed_pipeline(texts, lambda: transform, [*PIPELINE_ARGS, *extra_args], metrics_namespace=namespace,
                          runner=runner, parquet_row_group=parquet_row_group)


@contextlib.contextmanager
def prestarted_pool(workers: int, warm_cuda: bool, preload: str = ""):
    """A FnApiRunner whose N workers come from a `beam-tensorrt worker-pool --prestart N` booted
    before the job (the job's clock then starts with workers up); ``preload`` as ``worker_pool``'s."""
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    from apache_beam.transforms.environments import ExternalEnvironment

    from bench.common import worker_pool

    with worker_pool(workers, warm_cuda, preload) as address:
        yield FnApiRunner(default_environment=ExternalEnvironment(address))


def hf_checkpoint(artifact_dir: Path, out: Path) -> Path:
    """The same random encoder as a transformers BertForSequenceClassification checkpoint."""
    import shutil

    import torch
    import transformers
    from safetensors.numpy import load_file

    config = json.loads((artifact_dir / "encoder" / "config.json").read_text())
    cfg = transformers.BertConfig(**{k: v for k, v in config.items() if k != "model_type"}, num_labels=2)
    model = transformers.BertForSequenceClassification(cfg)
    weights = load_file(str(artifact_dir / "encoder" / "model.safetensors"))
    model.bert.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
    model.save_pretrained(str(out))
    tok = transformers.BertTokenizerFast(tokenizer_file=str(artifact_dir / "tokenizer.json"))
    tok.save_pretrained(str(out))
    shutil.copy(artifact_dir / "tokenizer.json", out / "tokenizer.json")
    return out


def backend_alone(session, groups, sync) -> float:
    """Seconds for ``session`` to run every group, after two warm-up passes (graph capture)."""
    feeds = [g.feeds(session.input_names) for g in groups]
    for _ in range(2):
        for i in range(0, len(feeds), 64):
            session.run_many(feeds[i:i + 64])
    sync()
    start = time.perf_counter()
    for i in range(0, len(feeds), 64):
        session.run_many(feeds[i:i + 64])
    sync()
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), default=None,
                    help="a named question: sets the flags below (flags given too override it)")
    ap.add_argument("--artifact", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--backends", default="tensorrt,torch",
                    help="GPU backends to measure, in order; NAME:padded for one text a sequence (no packing)")
    ap.add_argument("--seed-baseline", action="store_true",
                    help="also time Beam's TensorRTEngineHandlerNumPy pattern (needs TensorRT)")
    ap.add_argument("--engine-cache", default=None,
                    help="TensorRT engine cache (default: a fresh folder, so the first open builds the plan)")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--batch-size", type=int, default=256, help="Beam batch for every handler compared")
    ap.add_argument("--large-batch-size", type=int, default=1024, help="ClassifyText also at this batch")
    ap.add_argument("--workers", default="4,8", help="SDK worker processes for the multi-process rows")
    ap.add_argument("--max-seq-len", type=int, default=128)
    ap.add_argument("--long-rows", type=int, default=0,
                    help="also run ClassifyText (large batch, 1 process and the most processes) on this many rows")
    ap.add_argument("--long-processes", default="",
                    help="SDK processes for the --long-rows runs, e.g. '8' (default: 1 and the most of --workers)")
    ap.add_argument("--model-copies", type=int, default=None,
                    help="ClassifyText's model_copies for every ClassifyText row (models shared across processes)")
    ap.add_argument("--threads", default="",
                    help="with --long-rows: also run one SDK process with these many bundle threads (multi_threading)")
    ap.add_argument("--prestarted-pool", action="store_true",
                    help="also run each multi-process long row on `beam-tensorrt worker-pool --prestart N "
                         "--warm-cuda` workers (booted before the job is submitted)")
    ap.add_argument("--preload", action="store_true",
                    help="with --prestarted-pool: also run it with the model loaded by the workers ahead (--preload)")
    ap.add_argument("--arrow-batches", type=int, default=0,
                    help="also run ClassifyTextBatches, one process, on Parquet row groups of this many rows "
                         "(on --rows, and on --long-rows when given)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--skip-baselines", action="store_true")
    ap.add_argument("--hf-fraction", type=int, default=20, help="time the HF pipeline handler on rows/N")
    ap.add_argument("--pipeline-arg", action="append", default=[], help="extra Beam option for every pipeline row")
    ap.add_argument("--device", default="cuda", help="cuda (default); cpu only to smoke-test this script")
    scenario, _ = ap.parse_known_args()
    args = ap.parse_args([*SCENARIOS[scenario.scenario][1], *sys.argv[1:]] if scenario.scenario else None)

    import torch

    from beam_tensorrt import ClassifyText
    from beam_tensorrt.artifact import ModelArtifact
    from beam_tensorrt.backends import BackendOptions, open_session
    from beam_tensorrt.classifier import TextClassifier
    from bench.common import read_sst2

    PIPELINE_ARGS.extend(args.pipeline_arg)
    backends = [b for b in args.backends.split(",") if b]
    engine_cache = args.engine_cache or tempfile.mkdtemp(prefix="engine-cache-")
    texts = read_sst2(args.data, args.rows)
    n, b, big = len(texts), args.batch_size, args.large_batch_size
    artifact = ModelArtifact.load(args.artifact)
    cfg = json.loads((args.artifact / "encoder" / "config.json").read_text())
    H, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    rows: dict[str, dict] = {}  # stage -> {"seconds", "steady", ...}
    notes: dict[str, str] = {}
    opened: dict[str, dict] = {}
    backend_s: dict[tuple[str, int], float] = {}
    on_gpu = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)

    # Tokenizer, opening, and each backend alone on exactly the groups ClassifyText forms with it.
    sessions = {}
    for backend in backends:
        name, _, layout = backend.partition(":")
        start = time.perf_counter()
        sessions[backend] = open_session(name, artifact, BackendOptions(
            device=args.device, max_seq_len=args.max_seq_len, engine_cache=engine_cache, packing=layout != "padded"))
        opened[backend] = {"open_s": time.perf_counter() - start}
        print(f"{backend}: session open in {opened[backend]['open_s']:.1f} s", flush=True)
    for batch in (b, big):
        for backend, session in sessions.items():
            clf = TextClassifier(artifact, session, args.max_seq_len)
            start = time.perf_counter()
            groups = [g for i in range(0, n, batch) for _, g in clf.groups(texts[i:i + batch])]
            layout = "packed" if session.packed else "padded"
            rows.setdefault(f"tokenizer ({layout}, Beam batch {batch})", {"seconds": time.perf_counter() - start})
            computed = sum(flops(*g.input_ids.shape, H, L) for g in groups)
            real = sum(int((g.segment_ids if session.packed else g.attention_mask).astype(bool).sum()) for g in groups)
            notes[f"{backend}: real / computed tokens (batch {batch})"] = \
                f"{real / sum(g.input_ids.size for g in groups):.3f}"
            notes["tokens per row (real)"] = f"{real / n:.1f}"
            seconds = backend_alone(session, groups, sync)
            backend_s[backend, batch] = seconds
            rows[f"{backend} backend alone, groups of Beam batch {batch}"] = {"seconds": seconds}
            notes[f"{backend}: TFLOP/s on computed shapes (batch {batch})"] = f"{computed / seconds / 1e12:.1f}"
    for batch in (b, big):
        for other in backends[1:]:
            ratio = backend_s[other, batch] / backend_s[backends[0], batch]
            notes[f"{backends[0]} backend alone / {other} backend alone (batch {batch})"] = f"{ratio:.2f}x"
    for session in sessions.values():
        session.close()
    del sessions
    if on_gpu:
        torch.cuda.empty_cache()

    # End to end, one SDK process and several, per backend.
    def model_config(backend):
        """The fields of ClassifyText's config that choose and load the model."""
        name, _, layout = backend.partition(":")
        return dict(model=str(args.artifact), backend=name, max_seq_len=args.max_seq_len, engine_cache=engine_cache,
                    device=args.device, packing=layout != "padded")

    def classify(backend, batch):
        return ClassifyText(**model_config(backend), min_batch_size=batch, max_batch_size=batch,
                            model_copies=args.model_copies)

    def timed(backend, label, texts_in, batch, mode=None, workers=1, runner=None):
        """Run ClassifyText once, record it under ``label`` and print it."""
        label = f"ClassifyText {backend}, {label}" + (f", model_copies {args.model_copies}" if args.model_copies else "")
        extra = [f"--direct_running_mode={mode}"] if mode else []
        extra += [f"--direct_num_workers={workers}"] if mode or runner else []
        t = run_pipeline(texts_in, classify(backend, batch), extra, namespace=NS, runner=runner)
        rows[label] = t.__dict__ | {"steady": t.steady_rate, "batch": batch, "backend": backend}
        print(f"{label}: {t.summary()}; to the last row out {t.rows / t.last_row_s:.0f}/s", flush=True)
        return t

    def timed_tables(backend, label, texts_in):
        """ClassifyTextBatches on Arrow tables read from Parquet; its groups are those of Beam batch
        ``big`` (both tokenize and pack 256 rows at a time, in input order)."""
        from beam_tensorrt.classify_text_batches import ClassifyTextBatches

        label = f"ClassifyTextBatches {backend}, {label}"
        t = run_pipeline(texts_in, ClassifyTextBatches(**model_config(backend), model_copies=args.model_copies),
                         namespace=NS, parquet_row_group=args.arrow_batches)
        rows[label] = t.__dict__ | {"steady": t.steady_rate, "batch": big, "backend": backend}
        print(f"{label}: {t.summary()}; to the last row out {t.rows / t.last_row_s:.0f}/s", flush=True)

    worker_counts = [int(w) for w in args.workers.split(",") if w]
    long_texts = read_sst2(args.data, args.long_rows) if args.long_rows else []
    for backend in backends:
        for batch in (b, big):
            timed(backend, f"Beam batch {batch}, 1 process", texts, batch)
        for workers in worker_counts:
            timed(backend, f"Beam batch {big}, {workers} processes", texts, big, "multi_processing", workers)
        if args.arrow_batches:
            timed_tables(backend, f"row groups of {args.arrow_batches}, 1 process", texts)
        if long_texts:
            # Start-up (process start, imports, model load) is paid once per process; a longer input
            # shows what it costs against throughput, as a long-running job would see it.
            k = f"{len(long_texts) // 1000}k rows"
            long_processes = ([int(w) for w in args.long_processes.split(",") if w] if args.long_processes
                              else [1, *([max(worker_counts)] if worker_counts else [])])
            for procs in long_processes:
                mode = "multi_processing" if procs > 1 else None
                timed(backend, f"Beam batch {big}, {procs} process{'es' if procs > 1 else ''}, {k}", long_texts,
                      big, mode, procs)
                if args.prestarted_pool and procs > 1:
                    with prestarted_pool(procs, warm_cuda=on_gpu) as runner:
                        timed(backend, f"Beam batch {big}, {procs} prestarted pool workers, {k}", long_texts, big,
                              workers=procs, runner=runner)
                if args.prestarted_pool and args.preload and procs > 1:
                    with prestarted_pool(procs, warm_cuda=on_gpu, preload=json.dumps(model_config(backend))) as runner:
                        timed(backend, f"Beam batch {big}, {procs} prestarted pool workers, model preloaded, {k}",
                              long_texts, big, workers=procs, runner=runner)
            if args.arrow_batches:
                timed_tables(backend, f"row groups of {args.arrow_batches}, 1 process, {k}", long_texts)
            for threads in [int(w) for w in args.threads.split(",") if w]:
                timed(backend, f"Beam batch {big}, 1 process {threads} threads, {k}", long_texts, big,
                      "multi_threading", threads)

    # Beam's stock handlers, same model, data, batch size and device
    if not args.skip_baselines:
        from apache_beam.ml.inference.base import RunInference

        from bench.cpu_throughput import import_beam_hf_module

        hf = import_beam_hf_module()
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = hf_checkpoint(args.artifact, Path(tmp) / "hf")
            handler = hf.HuggingFacePipelineModelHandler(
                task="text-classification", model=str(ckpt), device="GPU" if on_gpu else "CPU",
                min_batch_size=b, max_batch_size=b,
                inference_args={"batch_size": b, "truncation": True, "max_length": args.max_seq_len},
                load_pipeline_args={"dtype": torch.float16 if on_gpu else torch.float32})
            part = n // args.hf_fraction  # ~130 rows/s on an H100: the whole set would take minutes
            t = run_pipeline(texts[:part], RunInference(handler))
            rows["Beam HuggingFacePipelineModelHandler"] = {"seconds": t.seconds * n / part}
            notes["HF pipeline handler"] = f"timed on {part} rows, scaled x{n / part:g}"
            t = run_keyed_pattern(texts, ckpt, b, args.max_seq_len, on_gpu)
            rows["Beam PyTorch pattern (tokenize Map + KeyedTensor)"] = {"seconds": t.seconds}
    if args.seed_baseline:
        t = run_seed_pattern(texts, artifact, args.max_seq_len)
        rows["Beam TensorRTEngineHandlerNumPy (static 64 x 128 plan, tokenize Map)"] = {"seconds": t.seconds}
        seed = t.seconds
        for name, r in rows.items():
            if name.startswith("ClassifyText") and r.get("rows", n) == n:
                notes[f"{name} / TensorRT NumPy pattern"] = f"{seed / r['seconds']:.2f}x"

    report(args, rows, notes, opened, backend_s, n, H, L, engine_cache)
    return 0


def report(args, rows, notes, opened, backend_s, n, H, L, engine_cache) -> None:
    import torch

    base = rows.get("Beam HuggingFacePipelineModelHandler", {}).get("seconds")
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    print(f"\n{n} SST-2 dev phrases (repeated), BERT-base shape ({L} x {H}, random weights), fp16, {device}, "
          f"{os.cpu_count()} CPU cores\n")
    print(f"| {'stage':<66} | {'seconds':>8} | {'sentences/s':>11} | {'steady /s':>9} | {'vs HF handler':>13} |")
    print(f"|{'-' * 68}|{'-' * 10}|{'-' * 13}|{'-' * 11}|{'-' * 15}|")
    for name, r in rows.items():
        ratio = f"{base / r['seconds'] * r.get('rows', n) / n:12.2f}x" if base else "            -"
        steady = f"{r['steady']:9.0f}" if r.get("steady") else "        -"
        print(f"| {name:<66} | {r['seconds']:8.2f} | {r.get('rows', n) / r['seconds']:11.0f} | {steady} | {ratio} |")
    print("\n'steady': rows / (last row out - first row out), i.e. without pipeline start-up and model loading.")
    for name, r in rows.items():
        if "batch" not in r:
            continue
        backend_rate = n / backend_s[r["backend"], r["batch"]]
        ratio = f"{r['rows'] / r['seconds'] / backend_rate:.2f}x end to end"
        if r.get("steady"):
            ratio += f", {r['steady'] / backend_rate:.2f}x steady"
        if r.get("load_model_s") is not None and r.get("inference_s") is not None:
            ratio += f"; model load {r['load_model_s']:.2f} s, in run_inference {r['inference_s']:.2f} s of {r['seconds']:.2f} s"
        print(f"{name} / its backend alone at the same groups: {ratio}")
    for backend, info in opened.items():
        print(f"{backend}: first session open (plan build or weight load) {info['open_s']:.1f} s")
    for k, v in notes.items():
        print(f"{k}: {v}")
    if args.json:
        plans = sorted(str(p) for p in Path(engine_cache).glob("*.plan.json"))
        args.json.write_text(json.dumps({
            "rows": n, "batch_size": args.batch_size, "large_batch_size": args.large_batch_size, "device": device,
            "cpu_cores": os.cpu_count(), "backends": args.backends,
            "command": "python -m bench.gpu_throughput " + " ".join(sys.argv[1:]),
            "seconds": {k: r["seconds"] for k, r in rows.items()},
            "sentences_per_s": {k: r.get("rows", n) / r["seconds"] for k, r in rows.items()},
            "steady_sentences_per_s": {k: r["steady"] for k, r in rows.items() if r.get("steady")},
            "session_open_s": {k: v["open_s"] for k, v in opened.items()},
            "plans": {Path(p).name: json.loads(Path(p).read_text()) for p in plans},
            "details": rows, "notes": notes}, indent=2, default=str))


def seed_engine(artifact, max_seq_len: int, batch: int, out: Path) -> Path:
    """A static [batch, max_seq_len] fp16 plan of the artifact's padded model (Beam's TensorRT
    handler allocates buffers from the engine's shapes, so they must be fixed)."""
    import onnx

    from beam_tensorrt.backends.tensorrt.builder import build_engine
    from beam_tensorrt.backends.tensorrt.spec import onnx_for

    source, precision, _ = onnx_for(artifact, "fp16", packing=False)
    model = onnx.load(str(source))
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        dims[0].dim_value = batch
        if value.name != "logits":
            dims[1].dim_value = max_seq_len
    static = out / "static.onnx"
    onnx.save_model(model, str(static))
    build_engine(static, out / "static.plan", [], precision=precision)
    return out / "static.plan"


def run_seed_pattern(texts, artifact, max_seq_len: int, batch: int = 64):
    """Beam's TensorRTEngineHandlerNumPy as the project's seed used it: each row tokenized in a Map
    and padded to max_seq_len, batches of 64 into a static plan. The model has three inputs and the
    handler's default inference function feeds one, so it gets an inference_fn (Beam's argument)."""
    import apache_beam as beam
    import numpy as np
    import transformers
    from apache_beam.ml.inference.base import PredictionResult, RunInference
    from apache_beam.ml.inference.tensorrt_inference import TensorRTEngineHandlerNumPy

    out = Path(tempfile.mkdtemp(prefix="seed-engine-"))
    plan = seed_engine(artifact, max_seq_len, batch, out)
    tok = transformers.BertTokenizerFast(tokenizer_file=str(artifact.tokenizer_path))

    def tokenize(text):
        enc = tok(text, padding="max_length", truncation=True, max_length=max_seq_len, return_tensors="np")
        return np.stack([enc["input_ids"][0], enc["attention_mask"][0], enc["token_type_ids"][0]]).astype(np.int64)

    def three_inputs(rows, engine, inference_args=None):
        from cuda.bindings import driver as cuda

        _, context, lock, inputs, outputs, _, cpu, stream = engine.get_engine_attrs()
        stacked = np.zeros((batch, 3, max_seq_len), np.int64)
        stacked[:len(rows)] = np.stack(rows)
        stacked[len(rows):, 1, 0] = 1  # padding rows attend to one token
        order = {"input_ids": 0, "attention_mask": 1, "token_type_ids": 2}
        with lock:
            hosts = [np.ascontiguousarray(stacked[:, order[i["name"]]]) for i in inputs]
            for host, i in zip(hosts, inputs):
                cuda.cuMemcpyHtoDAsync(i["allocation"], host.ctypes.data, i["size"], stream)
            context.execute_async_v3(stream)
            cuda.cuMemcpyDtoHAsync(cpu[0].ctypes.data, outputs[0]["allocation"], outputs[0]["size"], stream)
            cuda.cuStreamSynchronize(stream)
            logits = cpu[0][:len(rows)].copy()
        return [PredictionResult(r, y) for r, y in zip(rows, logits)]

    handler = TensorRTEngineHandlerNumPy(min_batch_size=batch, max_batch_size=batch, engine_path=str(plan),
                                         inference_fn=three_inputs)
    return run_pipeline(texts, beam.Map(tokenize) | RunInference(handler))


def run_keyed_pattern(texts, ckpt: Path, batch: int, max_seq_len: int, on_gpu: bool = True):
    """Beam's documented PyTorch pattern: tokenize each row to fixed-length tensors in a Map, then
    PytorchModelHandlerKeyedTensor batches the dicts (no length awareness)."""
    import apache_beam as beam
    import torch
    import transformers
    from apache_beam.ml.inference.base import RunInference
    from apache_beam.ml.inference.pytorch_inference import PytorchModelHandlerKeyedTensor

    class Fp16Bert(transformers.BertForSequenceClassification):
        def __init__(self, config):
            super().__init__(config)
            if on_gpu:
                self.half()  # load_state_dict then copies the fp32 weights into these fp16 parameters

        def forward(self, **kw):
            return super().forward(**kw).logits

    config = transformers.BertConfig.from_pretrained(str(ckpt))
    state = ckpt / "state_dict.pt"
    torch.save(transformers.BertForSequenceClassification.from_pretrained(str(ckpt)).state_dict(), state)
    handler = PytorchModelHandlerKeyedTensor(state_dict_path=str(state), model_class=Fp16Bert,
                                             model_params={"config": config}, device="GPU" if on_gpu else "CPU",
                                             min_batch_size=batch, max_batch_size=batch)
    tok = transformers.BertTokenizerFast(tokenizer_file=str(ckpt / "tokenizer.json"))

    def tokenize(text):
        enc = tok(text, padding="max_length", truncation=True, max_length=max_seq_len, return_tensors="pt")
        return {k: v[0] for k, v in enc.items()}

    return run_pipeline(texts, beam.Map(tokenize) | RunInference(handler))


if __name__ == "__main__":
    sys.exit(main())
