#!/usr/bin/env python3
"""Exploratory GPU measurements (not a committed benchmark)."""
import argparse, json, os, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))

ap = argparse.ArgumentParser()
ap.add_argument("--artifact", type=Path, required=True)
ap.add_argument("--data", type=Path, required=True)
ap.add_argument("--rows", type=int, default=100000)
ap.add_argument("--part", default="backend,e2e")
ap.add_argument("--variants", default="")
args = ap.parse_args()

import torch
from gpu_throughput import flops
from beam_tensorrt import ClassifyText
from beam_tensorrt.artifact import ModelArtifact
from beam_tensorrt.backends.base import BackendOptions
from beam_tensorrt.backends import torch as tb
from beam_tensorrt.backends.torch import TorchSession
from beam_tensorrt.tokenization import TextTokenizer, plan_sub_batches
from pipeline_timing import read_sst2, timed_pipeline

texts = read_sst2(args.data, args.rows)
n = len(texts)
artifact = ModelArtifact.load(args.artifact)
cfg = json.loads((args.artifact / "encoder" / "config.json").read_text())
H, L = cfg["hidden_size"], cfg["num_hidden_layers"]
out = {}
if "backend" in args.part:
    session = TorchSession(artifact, BackendOptions(device="cuda"))
    session.graph_after = 0
    tok = TextTokenizer(artifact.tokenizer_path, 128)
    t = time.perf_counter(); enc_all = tok.encode(texts); print(f"encode all in one call: {n/(time.perf_counter()-t):.0f}/s", flush=True)
    for b in (256, 1024):
        t = time.perf_counter(); encoded = [tok.encode(texts[i:i + b]) for i in range(0, n, b)]; te = time.perf_counter() - t
        print(f"encode batches of {b}: {n/te:.0f}/s", flush=True)
        for max_rows in (256, 128, 64, 32):
            batches = []
            for enc in encoded:
                groups = plan_sub_batches([len(e.ids) for e in enc], session.token_budget, max_rows)
                batches.append([tok.pad([enc[j] for j in g]) for g in groups])
            real = sum(int(x.attention_mask.sum()) for bb in batches for x in bb)
            padded = sum(x.input_ids.size for bb in batches for x in bb)
            fl = sum(flops(*x.input_ids.shape, H, L) for bb in batches for x in bb)
            feeds = [[x.feeds(session.input_names) for x in bb] for bb in batches]
            for f in feeds: session.run_many(f)
            for mode in ("run", "run_many"):
                torch.cuda.synchronize(); t = time.perf_counter()
                for f in feeds:
                    if mode == "run":
                        for g in f: session.run(g)
                    else:
                        session.run_many(f)
                torch.cuda.synchronize(); s = time.perf_counter() - t
                print(f"backend beam batch {b} max_rows {max_rows} {mode}: {n/s:.0f}/s, {fl/s/1e12:.1f} TFLOP/s padded, "
                      f"pad efficiency {real/padded:.2f}, graphs {len(session._graphs)}", flush=True)
                out[f"backend b{b} r{max_rows} {mode}"] = n / s
    del session; torch.cuda.empty_cache()

if "prof" in args.part:
    import collections
    from beam_tensorrt import classifier as C, tokenization as T
    acc = collections.Counter()
    def timed(cls, name, key):
        f = getattr(cls, name)
        def w(*a, **k):
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                acc[key] += time.perf_counter() - t
        setattr(cls, name, w)
    timed(T.TextTokenizer, "encode", "encode"); timed(T.TextTokenizer, "pad", "pad")
    timed(TorchSession, "_launch", "launch"); timed(C.TextClassifier, "classify", "classify total")
    timed(C.TextClassifier, "logits", "logits total")
    for mr in (256, 64):
        acc.clear(); tb.GPU_GROUP_ROWS = mr
        t = timed_pipeline(texts, lambda: ClassifyText(model=str(args.artifact), backend="torch", min_batch_size=256,
                           max_batch_size=256), [], metrics_namespace="BeamTensorRT_ClassifyText")
        print(f"PROF max_rows {mr}: {t.summary()}", {k: round(v, 2) for k, v in acc.items()}, flush=True)

if "e2e" in args.part:
    for v in args.variants.split(";"):
        if not v.strip():
            continue
        label, *rest = v.split("|")
        kw = dict(x.split("=") for x in rest[0].split(",")) if rest and rest[0] else {}
        pargs = rest[1].split() if len(rest) > 1 else []
        b = int(kw.get("batch", 256))
        tb.GRAPH_AFTER = int(kw.get("graph_after", 2))
        os.environ["BTRT_GRAPH_AFTER"] = str(tb.GRAPH_AFTER)
        tb.GPU_GROUP_ROWS = int(kw.get("max_rows", 128))
        t = timed_pipeline(texts, lambda: ClassifyText(model=str(args.artifact), backend="torch", min_batch_size=b,
                           max_batch_size=b), pargs, metrics_namespace="BeamTensorRT_ClassifyText")
        print(f"E2E {label} {kw} {pargs}: {t.summary()}", flush=True)
        out[f"e2e {label}"] = t.__dict__
print(json.dumps(out, indent=1))
