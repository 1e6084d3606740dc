#!/usr/bin/env python3
"""GPU verification of the TensorRT build path and the PyTorch CUDA backend (run on the GPU machine).

Locally (CPU), once:  python scripts/gpu_verify.py reference --data DIR --out ref.npz
    ONNX Runtime fp32 logits of the default model on SST-2 dev: the reference the GPU run is held to.
On the GPU machine:   python scripts/gpu_verify.py torch --data DIR --reference ref.npz --out results.json
    PyTorch CUDA fp16 (CUDA graphs on and off) vs that reference: label agreement and logit error.
                      python scripts/gpu_verify.py build --out-dir plans/ --trt-module tensorrt_rtx_bindings
    `beam-tensorrt build` for the default model and a random BERT-base; then loads each plan.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def read_dev(data: Path) -> tuple[list[str], np.ndarray]:
    with open(data / "dev.tsv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["sentence"] for r in rows], np.array([int(r["label"]) for r in rows])


def logits_of(clf, texts, batch=256) -> np.ndarray:
    return np.concatenate([clf.logits(texts[i:i + batch])[0] for i in range(0, len(texts), batch)])


def cmd_reference(args) -> dict:
    from beam_tensorrt.classifier import TextClassifier
    from beam_tensorrt.models import resolve_model

    texts, labels = read_dev(args.data)
    clf = TextClassifier.open(resolve_model("sentiment-minilm"), "onnxruntime", 128)
    logits = logits_of(clf, texts)
    np.savez_compressed(args.out, logits=logits)
    return {"rows": len(texts), "accuracy": float(((logits.argmax(1)) == labels).mean())}


def cmd_torch(args) -> dict:
    import torch

    from beam_tensorrt.backends.base import BackendOptions
    from beam_tensorrt.backends.torch import TorchSession
    from beam_tensorrt.classifier import TextClassifier
    from beam_tensorrt.models import resolve_model

    texts, labels = read_dev(args.data)
    ref = np.load(args.reference)["logits"]
    artifact = resolve_model("sentiment-minilm")
    out = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": len(texts)}
    for graphs in (True, False):
        session = TorchSession(artifact, BackendOptions(device="cuda", cuda_graphs=graphs))
        clf = TextClassifier(artifact, session, 128)
        logits_of(clf, texts[:2048])  # warm-up: graph capture per bucket
        start = time.perf_counter()
        logits = logits_of(clf, texts)
        seconds = time.perf_counter() - start
        key = "cuda_graphs" if graphs else "eager"
        out[key] = {"label_agreement": float((logits.argmax(1) == ref.argmax(1)).mean()),
                    "max_abs_logit_diff": float(np.abs(logits - ref).max()),
                    "mean_abs_logit_diff": float(np.abs(logits - ref).mean()),
                    "accuracy": float((logits.argmax(1) == labels).mean()),
                    "sentences_per_s": len(texts) / seconds, "graphs_captured": len(session._graphs)}
    return out


def cmd_pipeline(args) -> dict:
    """ClassifyText with backend torch in a real Beam pipeline over SST-2 dev, vs the CPU reference."""
    import tempfile

    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from beam_tensorrt import ClassifyText

    texts, labels = read_dev(args.data)
    ref = np.load(args.reference)["logits"].argmax(1)
    out = Path(tempfile.mkdtemp()) / "labels"
    start = time.perf_counter()
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        rows = p | beam.Create([beam.Row(i=i, text=t) for i, t in enumerate(texts)])
        (rows | ClassifyText(backend="torch", max_batch_size=256)
              | beam.Map(lambda r: f"{r.i}\t{r.label}") | beam.io.WriteToText(str(out), shard_name_template=""))
    seconds = time.perf_counter() - start
    got = dict(line.split("\t") for line in out.read_text().splitlines())
    predicted = np.array([1 if got[str(i)] == "POSITIVE" else 0 for i in range(len(texts))])
    return {"rows": len(texts), "rows_out": len(got), "label_agreement_with_onnxruntime_cpu": float((predicted == ref).mean()),
            "accuracy": float((predicted == labels).mean()), "pipeline_seconds": round(seconds, 1)}


def cmd_build(args) -> dict:
    from beam_tensorrt.models import resolve_model
    from beam_tensorrt.trt.metadata import EngineMismatch
    from beam_tensorrt.trt.runtime import TensorRTSession

    args.out_dir.mkdir(parents=True, exist_ok=True)
    bert_base = args.out_dir / "bert-base-artifact"
    if not (bert_base / "manifest.json").exists():
        subprocess.run([sys.executable, str(Path(__file__).parents[1] / "bench" / "random_bert.py"), "--out", str(bert_base)],
                       check=True)
    results = {}
    for name, artifact in (("sentiment-minilm", "sentiment-minilm"), ("bert-base-random", str(bert_base))):
        plan = args.out_dir / f"{name}.plan"
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "beam_tensorrt.cli", "build", artifact, "--out", str(plan),
                               "--trt-module", args.trt_module, "--timing-cache", str(args.out_dir / "timing.cache")],
                              capture_output=True, text=True)
        entry: dict = {"build_rc": proc.returncode, "build_seconds": round(time.monotonic() - start, 1),
                       "build_log_tail": proc.stderr[-1500:]}
        if proc.returncode == 0:
            entry["metadata"] = json.loads(Path(str(plan) + ".json").read_text())  # TensorRT may print to stdout
            entry["plan_mb"] = round(plan.stat().st_size / 1e6, 1)
            try:
                TensorRTSession(plan, onnx_sha256=resolve_model(artifact).manifest.onnx_sha256,
                                trt_module=args.trt_module)
                entry["load"] = "loaded"
            except EngineMismatch as e:
                entry["load"] = f"EngineMismatch: {e}"
            except Exception as e:  # anything else is a bug to report, not a clear refusal
                entry["load"] = f"UNEXPECTED {type(e).__name__}: {e}"
        results[name] = entry
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("reference")
    r.add_argument("--data", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    t = sub.add_parser("torch")
    t.add_argument("--data", type=Path, required=True)
    t.add_argument("--reference", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    pl = sub.add_parser("pipeline")
    pl.add_argument("--data", type=Path, required=True)
    pl.add_argument("--reference", type=Path, required=True)
    pl.add_argument("--out", type=Path, required=True)
    b = sub.add_parser("build")
    b.add_argument("--out-dir", type=Path, required=True)
    b.add_argument("--trt-module", default="tensorrt_rtx_bindings")
    b.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    result = {"reference": cmd_reference, "torch": cmd_torch, "pipeline": cmd_pipeline, "build": cmd_build}[args.cmd](args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.cmd != "reference":
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
