#!/usr/bin/env python3
"""GPU throughput of ClassifyText vs Beam's stock handlers, on one machine, in one run.

Model: a BERT-base-sized encoder (12 x 768, random weights: speed only) written by
bench/random_bert.py. Data: SST-2 dev phrases repeated to --rows. Rows, in order:
  tokenizer          the Rust tokenizer alone (encode + pad), one process
  backend            our PyTorch CUDA backend (fp16, SDPA, CUDA graphs) on the pre-tokenized,
                     length-grouped batches ClassifyText runs: the ceiling for the pipeline
  ClassifyText       end to end in a Beam pipeline (FnApiRunner), backend torch
  HF pipeline        Beam's HuggingFacePipelineModelHandler (Beam YAML's built-in RunInference
                     type), fp16, same Beam batch size, batch_size passed to the pipeline
  PyTorch keyed      Beam's documented pattern: a tokenizing Map (padding to max_seq_len) +
                     PytorchModelHandlerKeyedTensor, fp16

    python bench/gpu_throughput.py --artifact DIR --data DIR [--rows 100000] [--batch-size 256]
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def read_texts(data: Path, rows: int) -> list[str]:
    with open(data / "dev.tsv", newline="", encoding="utf-8") as f:
        texts = [r["sentence"] for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    return (texts * (-(-rows // len(texts))))[:rows]


def flops(rows: int, seq: int, hidden: int, layers: int) -> float:
    """Forward FLOPs of a BERT encoder on a [rows, seq] batch: dense layers + attention."""
    dense = 2 * rows * seq * layers * (4 * hidden * hidden + 2 * hidden * 4 * hidden)
    attention = 2 * 2 * rows * layers * seq * seq * hidden
    return float(dense + attention)


PIPELINE_ARGS: list[str] = []


def run_pipeline(texts, transform) -> float:
    from cpu_throughput import run_pipeline as timed_pipeline

    return timed_pipeline(texts, lambda: transform, PIPELINE_ARGS)


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
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--max-seq-len", type=int, default=128)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--skip-baselines", action="store_true")
    ap.add_argument("--e2e-only", action="store_true", help="only the ClassifyText pipeline row")
    ap.add_argument("--pipeline-arg", action="append", default=[],
                    help="extra Beam option for the pipeline rows, e.g. --pipeline-arg=--direct_num_workers=8")
    ap.add_argument("--device", default="cuda", help="cuda (default); cpu only to smoke-test this script")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))

    import torch

    from beam_tensorrt import ClassifyText
    from beam_tensorrt.artifact import ModelArtifact
    from beam_tensorrt.backends.base import BackendOptions
    from beam_tensorrt.backends.torch import TorchSession
    from beam_tensorrt.tokenization import TextTokenizer, plan_sub_batches

    PIPELINE_ARGS.extend(args.pipeline_arg)
    texts = read_texts(args.data, args.rows)
    n, b = len(texts), args.batch_size
    artifact = ModelArtifact.load(args.artifact)
    cfg = json.loads((args.artifact / "encoder" / "config.json").read_text())
    H, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    results: dict[str, float] = {}
    notes: dict[str, str] = {}

    if args.e2e_only:
        seconds = run_pipeline(texts, ClassifyText(model=str(args.artifact), backend="torch", min_batch_size=b,
                                                   max_batch_size=b, max_seq_len=args.max_seq_len))
        print(f"ClassifyText end to end {PIPELINE_ARGS}: {n} rows in {seconds:.2f} s = {n / seconds:.0f} sentences/s")
        return 0
    session = TorchSession(artifact, BackendOptions(device=args.device))
    tok = TextTokenizer(artifact.tokenizer_path, args.max_seq_len)
    start = time.perf_counter()
    encoded = [tok.encode(texts[i:i + b]) for i in range(0, n, b)]
    batches = []
    for enc in encoded:
        groups = plan_sub_batches([len(e.ids) for e in enc], session.token_budget, b)
        batches += [tok.pad([enc[j] for j in g]) for g in groups]
    results["tokenizer (encode + length-grouped pad)"] = time.perf_counter() - start
    real_tokens = int(sum(int(x.attention_mask.sum()) for x in batches))
    padded_flops = sum(flops(*x.input_ids.shape, H, L) for x in batches)

    feeds = [x.feeds(session.input_names) for x in batches]
    for f in feeds:  # capture every graph once
        session.run(f)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    for f in feeds:
        session.run(f)
    sync()
    results["backend: torch fp16 + CUDA graphs, pre-tokenized"] = time.perf_counter() - start
    backend_s = results["backend: torch fp16 + CUDA graphs, pre-tokenized"]
    notes["achieved TFLOP/s (backend, padded shapes)"] = f"{padded_flops / backend_s / 1e12:.1f}"
    notes["tokens per row (real)"] = f"{real_tokens / n:.1f}"
    del session

    results["ClassifyText (Beam, backend torch)"] = run_pipeline(texts, ClassifyText(
        model=str(args.artifact), backend="torch", min_batch_size=b, max_batch_size=b, max_seq_len=args.max_seq_len))

    if not args.skip_baselines:
        from cpu_throughput import import_beam_hf_module

        from apache_beam.ml.inference.base import RunInference

        hf = import_beam_hf_module()
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = hf_checkpoint(args.artifact, Path(tmp) / "hf")
            handler = hf.HuggingFacePipelineModelHandler(
                task="text-classification", model=str(ckpt), device="GPU", min_batch_size=b, max_batch_size=b,
                inference_args={"batch_size": b, "truncation": True, "max_length": args.max_seq_len},
                load_pipeline_args={"dtype": torch.float16})
            results["Beam HuggingFacePipelineModelHandler"] = run_pipeline(texts[: n // 4], RunInference(handler)) * 4
            notes["HF pipeline handler"] = f"timed on {n // 4} rows, scaled x4"
            results["Beam PyTorch pattern (tokenize Map + KeyedTensor)"] = run_keyed_pattern(
                texts, ckpt, b, args.max_seq_len)

    base = results.get("Beam HuggingFacePipelineModelHandler")
    print(f"\n{n} SST-2 dev phrases (repeated), Beam batch {b}, BERT-base shape ({L} x {H}, random weights), "
          f"device {torch.cuda.get_device_name(0) if args.device.startswith('cuda') else 'cpu'}\n")
    print(f"| {'stage':<52} | {'seconds':>8} | {'sentences/s':>11} | {'vs HF handler':>13} |")
    print(f"|{'-' * 54}|{'-' * 10}|{'-' * 13}|{'-' * 15}|")
    for name, secs in results.items():
        ratio = f"{base / secs:12.2f}x" if base else "           -"
        print(f"| {name:<52} | {secs:8.2f} | {n / secs:11.0f} | {ratio} |")
    e2e = results["ClassifyText (Beam, backend torch)"]
    print(f"\nClassifyText end to end / backend alone: {backend_s / e2e:.2f}x")
    for k, v in notes.items():
        print(f"{k}: {v}")
    if args.json:
        args.json.write_text(json.dumps({"rows": n, "batch_size": b, "device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
                                         "seconds": results, "sentences_per_s": {k: n / v for k, v in results.items()},
                                         "notes": notes}, indent=2))
    return 0


def run_keyed_pattern(texts, ckpt: Path, batch: int, max_seq_len: int) -> float:
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
                                             model_params={"config": config}, device="GPU",
                                             min_batch_size=batch, max_batch_size=batch)
    tok = transformers.BertTokenizerFast(tokenizer_file=str(ckpt / "tokenizer.json"))

    def tokenize(text):
        enc = tok(text, padding="max_length", truncation=True, max_length=max_seq_len, return_tensors="pt")
        return {k: v[0] for k, v in enc.items()}

    return run_pipeline(texts, beam.Map(tokenize) | RunInference(handler))


if __name__ == "__main__":
    sys.exit(main())
