#!/usr/bin/env python3
"""CPU throughput of ClassifyText vs Beam's stock HuggingFacePipelineModelHandler, measured in one run.

Both run the same encoder (all-MiniLM-L6-v2: 6 layers, hidden 384) over the same
SST-2 dev phrases, in the same Beam runner (FnApiRunner), with the same batch size.
The baseline is Beam YAML's built-in RunInference handler type: a transformers
pipeline('text-classification') in PyTorch, given ``batch_size`` so it batches too.
Also printed: the tokenizer alone and the raw ONNX Runtime backend on pre-tokenized
batches, which bound what the pipeline can reach.

    python -m bench.cpu_throughput --data ../shared/data/sst2 [--rows 6735] [--batch-size 64]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path



def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_tokenizer(texts, artifact, batch):
    from beam_tensorrt.tokenization import TextTokenizer

    tok = TextTokenizer(artifact.tokenizer_path, 128)
    return timed(lambda: [tok(texts[i:i + batch]) for i in range(0, len(texts), batch)])


def bench_backend(texts, artifact, batch, grouped: bool):
    """The backend alone on pre-tokenized arrays: each Beam-sized batch padded to its longest row,
    or (grouped) cut into the length-sorted groups ClassifyText runs."""
    from beam_tensorrt.backends.onnxruntime import OnnxRuntimeSession
    from beam_tensorrt.tokenization import TextTokenizer, plan_sub_batches

    tok = TextTokenizer(artifact.tokenizer_path, 128)
    session = OnnxRuntimeSession(artifact)
    feeds = []
    for i in range(0, len(texts), batch):
        encodings = tok.encode(texts[i:i + batch])
        groups = (plan_sub_batches([len(e.ids) for e in encodings], session.token_budget, batch) if grouped
                  else [range(len(encodings))])
        feeds += [tok.pad([encodings[j] for j in g]).feeds(session.input_names) for g in groups]
    session.run(feeds[0])
    return timed(lambda: [session.run(f) for f in feeds])


def run_pipeline(texts, transform_factory, pipeline_args=()) -> float:
    """Seconds to run the texts through ``transform`` in Beam (FnApiRunner); checks every row came out."""
    from bench.common import timed_pipeline

    return timed_pipeline(texts, transform_factory, pipeline_args).seconds


def classify_text(batch):
    from beam_tensorrt import ClassifyText

    return lambda: ClassifyText(backend="onnxruntime", min_batch_size=batch, max_batch_size=batch)


def import_beam_hf_module():
    """Beam 2.77's huggingface_inference imports tensorflow and transformers.TFAutoModel at module
    level (TF support is gone from transformers 5); its pipeline handler uses neither. Inert
    stand-ins let the real handler run without installing TensorFlow."""
    import types

    if "tensorflow" not in sys.modules:
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            import importlib.machinery

            stand_in = types.ModuleType("tensorflow")
            stand_in.__spec__ = importlib.machinery.ModuleSpec("tensorflow", None)
            stand_in.Tensor = type("Tensor", (), {})
            sys.modules["tensorflow"] = stand_in
    from transformers import AutoModel, Pipeline, pipeline  # noqa: F401  (first touches settle the lazy module)

    module = sys.modules["transformers"]
    if "TFAutoModel" not in module.__dict__:
        module.__dict__["TFAutoModel"] = type("TFAutoModel", (), {})
    from apache_beam.ml.inference import huggingface_inference

    return huggingface_inference


def hf_pipeline_baseline(batch, checkpoint):
    from apache_beam.ml.inference.base import RunInference

    import_beam_hf_module()
    from apache_beam.ml.inference.huggingface_inference import HuggingFacePipelineModelHandler

    handler = HuggingFacePipelineModelHandler(task="text-classification", model=checkpoint, device="CPU",
                                              min_batch_size=batch, max_batch_size=batch,
                                              inference_args={"batch_size": batch})
    return lambda: RunInference(handler)


def make_baseline_checkpoint(out: Path) -> str:
    """BertForSequenceClassification on the same MiniLM encoder weights (2-label head; speed only)."""
    import shutil

    import transformers

    from beam_tensorrt.models import sentiment_minilm

    enc = sentiment_minilm.MODEL.encoder_dir()
    model = transformers.BertForSequenceClassification.from_pretrained(str(enc), num_labels=2, local_files_only=True)
    model.save_pretrained(str(out))
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(enc / f, out / f)
    return str(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--rows", type=int, default=6735)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--json", type=Path, default=None, help="write results here")
    args = ap.parse_args()

    from bench.common import read_sst2

    from beam_tensorrt.models import resolve_model

    texts = read_sst2(args.data, args.rows)
    artifact = resolve_model("sentiment-minilm")
    n, b = len(texts), args.batch_size
    results = {}
    results["tokenizer only"] = bench_tokenizer(texts, artifact, b)
    results["ONNX Runtime, pre-tokenized, batch padded to its max"] = bench_backend(texts, artifact, b, False)
    results["ONNX Runtime, pre-tokenized, length-grouped"] = bench_backend(texts, artifact, b, True)
    results["ClassifyText (Beam pipeline)"] = run_pipeline(texts, classify_text(b))
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = make_baseline_checkpoint(Path(tmp) / "hf")
        results["Beam HuggingFacePipelineModelHandler (baseline)"] = run_pipeline(texts, hf_pipeline_baseline(b, ckpt))

    base = results["Beam HuggingFacePipelineModelHandler (baseline)"]
    machine = f"{platform.machine()} {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"
    print(f"\n{n} SST-2 dev phrases, batch {b}, all-MiniLM-L6-v2, CPU ({machine})\n")
    print(f"| {'stage':<54} | {'seconds':>8} | {'sentences/s':>11} | {'vs baseline':>11} |")
    print(f"|{'-' * 56}|{'-' * 10}|{'-' * 13}|{'-' * 13}|")
    for name, secs in results.items():
        print(f"| {name:<54} | {secs:8.2f} | {n / secs:11.0f} | {base / secs:10.2f}x |")
    ratio = base / results["ClassifyText (Beam pipeline)"]
    print(f"\nClassifyText / stock HF pipeline handler: {ratio:.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": n, "batch_size": b, "machine": machine, "seconds": results,
                                         "sentences_per_s": {k: n / v for k, v in results.items()},
                                         "ratio_vs_baseline": ratio}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
