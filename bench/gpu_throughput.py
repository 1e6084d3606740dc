#!/usr/bin/env python3
"""GPU throughput of ClassifyText vs Beam's stock handlers, on one machine, in one run.

Model: a BERT-base-sized encoder (12 x 768, random weights: speed only) written by
bench/random_bert.py. Data: SST-2 dev phrases repeated to --rows. Rows, in order:
  tokenizer          the Rust tokenizer alone (encode + pad into ClassifyText's length groups)
  backend alone      our PyTorch CUDA backend (fp16, SDPA, CUDA graphs for hot shapes) on exactly
                     the pre-tokenized groups ClassifyText forms for a Beam batch: the ceiling
  ClassifyText       end to end in a Beam pipeline (FnApiRunner) reading sharded text files:
                     Beam batch as the baselines, a larger Beam batch, and several SDK worker
                     processes sharing the GPU (how Dataflow/Flink/Spark run Python workers)
  HF pipeline        Beam's HuggingFacePipelineModelHandler (Beam YAML's built-in RunInference
                     type), fp16, same Beam batch size, batch_size passed to the pipeline
  PyTorch keyed      Beam's documented pattern: a tokenizing Map (padding to max_seq_len) +
                     PytorchModelHandlerKeyedTensor, fp16

    python bench/gpu_throughput.py --artifact DIR --data DIR [--rows 100000] [--batch-size 256]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path



def flops(rows: int, seq: int, hidden: int, layers: int) -> float:
    """Forward FLOPs of a BERT encoder on a [rows, seq] batch: dense layers + attention."""
    dense = 2 * rows * seq * layers * (4 * hidden * hidden + 2 * hidden * 4 * hidden)
    attention = 2 * 2 * rows * layers * seq * seq * hidden
    return float(dense + attention)


PIPELINE_ARGS: list[str] = []


def run_pipeline(texts, transform, extra_args=(), namespace=""):
    from pipeline_timing import timed_pipeline

    return timed_pipeline(texts, lambda: transform, [*PIPELINE_ARGS, *extra_args], metrics_namespace=namespace)


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifact", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
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
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--skip-baselines", action="store_true")
    ap.add_argument("--hf-fraction", type=int, default=20, help="time the HF pipeline handler on rows/N")
    ap.add_argument("--pipeline-arg", action="append", default=[],
                    help="extra Beam option for every pipeline row")
    ap.add_argument("--device", default="cuda", help="cuda (default); cpu only to smoke-test this script")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))

    import torch

    from pipeline_timing import read_sst2

    from beam_tensorrt import ClassifyText
    from beam_tensorrt.artifact import ModelArtifact
    from beam_tensorrt.backends.base import BackendOptions
    from beam_tensorrt.backends.torch import TorchSession
    from beam_tensorrt.classifier import TextClassifier

    PIPELINE_ARGS.extend(args.pipeline_arg)
    texts = read_sst2(args.data, args.rows)
    n, b, big = len(texts), args.batch_size, args.large_batch_size
    artifact = ModelArtifact.load(args.artifact)
    cfg = json.loads((args.artifact / "encoder" / "config.json").read_text())
    H, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    on_gpu = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)
    rows: dict[str, dict] = {}  # stage -> {"seconds", "steady", ...}
    notes: dict[str, str] = {}
    ns = "BeamTensorRT_ClassifyText"

    # (c) tokenizer and (b) backend, on exactly the groups ClassifyText forms for a Beam batch.
    session = TorchSession(artifact, BackendOptions(device=args.device))
    clf = TextClassifier(artifact, session, args.max_seq_len)
    backend_s: dict[int, float] = {}
    for batch in (b, big):
        start = time.perf_counter()
        groups = [g for i in range(0, n, batch) for _, g in clf.token_groups(texts[i:i + batch])]
        tok_s = time.perf_counter() - start
        if batch == b:
            rows["tokenizer (encode + pad, length groups)"] = {"seconds": tok_s}
        feeds = [g.feeds(session.input_names) for g in groups]
        for f in feeds:  # the first passes capture the hot shapes' CUDA graphs
            session.run_many([f])
        for f in feeds:
            session.run_many([f])
        sync()
        start = time.perf_counter()
        for i in range(0, len(feeds), 64):
            session.run_many(feeds[i:i + 64])
        sync()
        backend_s[batch] = time.perf_counter() - start
        rows[f"backend alone, groups of Beam batch {batch}"] = {"seconds": backend_s[batch]}
        padded = sum(flops(*g.input_ids.shape, H, L) for g in groups)
        real = sum(int(g.attention_mask.sum()) for g in groups)
        notes[f"backend TFLOP/s on padded shapes (batch {batch})"] = f"{padded / backend_s[batch] / 1e12:.1f}"
        notes[f"padding efficiency (real / padded tokens, batch {batch})"] = \
            f"{real / sum(g.input_ids.size for g in groups):.2f}"
        notes["tokens per row (real)"] = f"{real / n:.1f}"
    del clf, session
    if on_gpu:
        torch.cuda.empty_cache()

    # (a) end to end, one SDK process and several
    def classify(batch):
        return ClassifyText(model=str(args.artifact), backend="torch", min_batch_size=batch, max_batch_size=batch,
                            max_seq_len=args.max_seq_len, model_copies=args.model_copies)

    def timed(label, texts_in, batch, mode=None, workers=1):
        """Run ClassifyText once, record it under ``label`` and print it."""
        if args.model_copies:
            label += f", model_copies {args.model_copies}"
        extra = [f"--direct_running_mode={mode}", f"--direct_num_workers={workers}"] if mode else []
        t = run_pipeline(texts_in, classify(batch), extra, namespace=ns)
        rows[label] = t.__dict__ | {"steady": t.steady_rate, "batch": batch}
        print(f"{label}: {t.summary()}; to the last row out {t.rows / t.last_row_s:.0f}/s", flush=True)
        return t

    worker_counts = [int(w) for w in args.workers.split(",") if w]
    for batch in (b, big):
        timed(f"ClassifyText, Beam batch {batch}, 1 process", texts, batch)
    for workers in worker_counts:
        timed(f"ClassifyText, Beam batch {big}, {workers} processes", texts, big, "multi_processing", workers)
    if args.long_rows:
        # Start-up (process start, imports, model load) is paid once per process; a longer input
        # shows what it costs against throughput, as a long-running job would see it.
        long_texts = read_sst2(args.data, args.long_rows)
        k = f"{len(long_texts) // 1000}k rows"
        long_processes = ([int(w) for w in args.long_processes.split(",") if w] if args.long_processes
                          else [1, *([max(worker_counts)] if worker_counts else [])])
        for procs in long_processes:
            if procs == 1:
                timed(f"ClassifyText, Beam batch {big}, 1 process, {k}", long_texts, big)
            else:
                timed(f"ClassifyText, Beam batch {big}, {procs} processes, {k}", long_texts, big, "multi_processing", procs)
        for threads in [int(w) for w in args.threads.split(",") if w]:
            # One process, several bundles at once: Beam's per-row Python of one bundle can run while
            # another waits on the tokenizer (Rust) or the GPU, both outside the GIL.
            timed(f"ClassifyText, Beam batch {big}, 1 process {threads} threads, {k}", long_texts, big,
                  "multi_threading", threads)

    # (d) Beam's stock handlers, same model, data, batch size and device
    if not args.skip_baselines:
        from cpu_throughput import import_beam_hf_module

        from apache_beam.ml.inference.base import RunInference

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

    base = rows.get("Beam HuggingFacePipelineModelHandler", {}).get("seconds")
    device = torch.cuda.get_device_name(0) if on_gpu else "cpu"
    print(f"\n{n} SST-2 dev phrases (repeated), BERT-base shape ({L} x {H}, random weights), fp16, {device}, "
          f"{os.cpu_count()} CPU cores\n")
    print(f"| {'stage':<58} | {'seconds':>8} | {'sentences/s':>11} | {'steady /s':>9} | {'vs HF handler':>13} |")
    print(f"|{'-' * 60}|{'-' * 10}|{'-' * 13}|{'-' * 11}|{'-' * 15}|")
    for name, r in rows.items():
        ratio = f"{base / r['seconds'] * r.get('rows', n) / n:12.2f}x" if base else "            -"
        steady = f"{r['steady']:9.0f}" if r.get("steady") else "        -"
        print(f"| {name:<58} | {r['seconds']:8.2f} | {r.get('rows', n) / r['seconds']:11.0f} | {steady} | {ratio} |")
    print("\n'steady': rows / (last row out - first row out), i.e. without pipeline start-up and model loading.")
    for name, r in rows.items():
        if "batch" not in r:
            continue
        backend_rate = n / backend_s[r["batch"]]
        ratio = f"{r['rows'] / r['seconds'] / backend_rate:.2f}x end to end"
        if r.get("steady"):
            ratio += f", {r['steady'] / backend_rate:.2f}x steady"
        if r.get("load_model_s") is not None and r.get("inference_s") is not None:
            ratio += f"; model load {r['load_model_s']:.2f} s, in run_inference {r['inference_s']:.2f} s of {r['seconds']:.2f} s"
        print(f"{name} / backend alone at the same groups: {ratio}")
    for k, v in notes.items():
        print(f"{k}: {v}")
    if args.json:
        args.json.write_text(json.dumps({"rows": n, "batch_size": b, "large_batch_size": big, "device": device,
                                         "cpu_cores": os.cpu_count(),
                                         "seconds": {k: r["seconds"] for k, r in rows.items()},
                                         "sentences_per_s": {k: r.get("rows", n) / r["seconds"]
                                                             for k, r in rows.items()},
                                         "steady_sentences_per_s": {k: r["steady"] for k, r in rows.items()
                                                                    if r.get("steady")},
                                         "details": rows, "notes": notes}, indent=2, default=str))
    return 0


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
