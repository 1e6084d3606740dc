#!/usr/bin/env python3
"""Write a BERT-base-sized artifact with random weights (for throughput; correctness is checked on
the real default model). Same graph builder and torch spec as the default model, so every backend
runs it. The tokenizer is the default model's (BERT uncased WordPiece, 30,522 tokens).

    python bench/random_bert.py --out /tmp/bert-base [--layers 12 --hidden 768 --heads 12]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np


def random_bert(hidden: int, layers: int, heads: int, vocab: int = 30522, positions: int = 512, seed: int = 0):
    rng = np.random.default_rng(seed)

    def n(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    w = {"embeddings.word_embeddings.weight": n(vocab, hidden), "embeddings.position_embeddings.weight": n(positions, hidden),
         "embeddings.token_type_embeddings.weight": n(2, hidden), "embeddings.LayerNorm.weight": np.ones(hidden, np.float32),
         "embeddings.LayerNorm.bias": np.zeros(hidden, np.float32)}
    inter = 4 * hidden
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for k in ("query", "key", "value"):
            w[p + f"attention.self.{k}.weight"], w[p + f"attention.self.{k}.bias"] = n(hidden, hidden), n(hidden)
        w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"] = n(hidden, hidden), n(hidden)
        w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"] = n(inter, hidden), n(inter)
        w[p + "output.dense.weight"], w[p + "output.dense.bias"] = n(hidden, inter), n(hidden)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[p + ln + ".weight"], w[p + ln + ".bias"] = np.ones(hidden, np.float32), np.zeros(hidden, np.float32)
    config = {"hidden_size": hidden, "num_attention_heads": heads, "num_hidden_layers": layers,
              "intermediate_size": inter, "max_position_embeddings": positions, "vocab_size": vocab,
              "hidden_act": "gelu", "layer_norm_eps": 1e-12, "type_vocab_size": 2, "model_type": "bert"}
    head = [(n(hidden, 2), np.zeros(2, np.float32))]
    return config, w, head


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--tokenizer", type=Path, default=None, help="tokenizer.json (default: the default model's)")
    args = ap.parse_args()

    from safetensors.numpy import save_file

    from beam_tensorrt.models import sentiment_minilm
    from beam_tensorrt.models.bert import PooledBert
    from beam_tensorrt.models.pooled_bert import build_pooled_bert_artifact

    config, weights, head = random_bert(args.hidden, args.layers, args.heads)
    with tempfile.TemporaryDirectory() as tmp:
        enc = Path(tmp)
        (enc / "config.json").write_text(json.dumps(config))
        save_file(weights, str(enc / "model.safetensors"))
        save_file({f"head.{j}.{k}": v for j, (w, b) in enumerate(head) for k, v in (("weight", w), ("bias", b))},
                  str(enc / "head.safetensors"))
        artifact = build_pooled_bert_artifact(
            args.out, name=f"random-bert-{args.layers}x{args.hidden}", labels=["NEGATIVE", "POSITIVE"],
            model=PooledBert(config, weights, head),
            tokenizer_json=args.tokenizer or sentiment_minilm.MODEL.encoder_dir() / "tokenizer.json",
            torch_weights={"encoder": "encoder", "head": "head.safetensors"}, source={"random": True},
            extra_files={"encoder/config.json": enc / "config.json", "encoder/model.safetensors": enc / "model.safetensors",
                         "head.safetensors": enc / "head.safetensors"})
    print(artifact.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
