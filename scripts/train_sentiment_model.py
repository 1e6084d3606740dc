#!/usr/bin/env python3
"""Fine-tune the default model ``sentiment-minilm`` on SST-2 and write what ships: low-rank adapters
for the encoder and a calibrated head (a few MB), never the encoder itself.

What it does, in order (every step seeded):
1. An honest split. SST-2's ``train.tsv`` and ``dev.tsv`` hold the phrases of the same source
   sentences, so a phrase-level split measures memory. Here the *sentences* (phrases that are
   not part of a longer phrase) are drawn, ``--val`` and ``--test`` of them are held out, and every
   phrase that is a contiguous part of a held-out sentence leaves training. Validation (model
   choice, temperature) and test (the reported figure, looked at once) are whole unseen
   sentences, like GLUE's own dev set.
2. Fine-tuning of all-MiniLM-L6-v2 with LoRA (rank ``--rank``) on every dense layer of the encoder,
   its biases and LayerNorms trained too, and a fresh head (mean pooling, L2 norm, 384-256-2 MLP:
   the product's graph), through ``models.bert.pooled_bert_forward``: the same forward pass the
   ONNX builder and the PyTorch backend run. The epoch with the best validation accuracy is kept.
3. Temperature scaling on the validation sentences; expected calibration error (15 bins) before
   and after, on validation and test. The temperature is folded into the head's last layer.
4. Export: ``sentiment_minilm_adapters.safetensors`` (LoRA pairs, scale folded in, plus the trained
   biases and LayerNorms) and ``sentiment_minilm_head.safetensors``; then the artifact is assembled
   the product's way (adapters merged with numpy, ONNX built without torch) and ONNX Runtime's
   logits are checked against the trained model's.

    python -m scripts.train_sentiment_model --data ../shared/data/sst2 --out-dir OUT [--device cuda]
        [--rank 16 --epochs 4 --lr 5e-4 --batch-size 32 --seed 0] [--json OUT/report.json]

Needs torch (``pip install 'beam-tensorrt[export]'``); a GPU makes it take minutes.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from scripts.sst2 import SEED_SPLIT, expected_calibration_error, fit_temperature, honest_split, read_tsv


# -- model ----------------------------------------------------------------------------------------

class LoraWeights(dict):
    """The encoder's weights as the forward pass reads them: frozen base + ``B @ A * scale`` for
    adapted dense layers, trained tensors where biases and LayerNorms are trained."""

    def __init__(self, base, lora, trained, scale):
        super().__init__(base)
        self.lora, self.trained, self.scale = lora, trained, scale

    def __getitem__(self, name):
        if name in self.trained:
            return self.trained[name]
        if name.endswith(".weight") and name[:-len(".weight")] in self.lora:
            a, b = self.lora[name[:-len(".weight")]]
            return super().__getitem__(name) + (b @ a) * self.scale
        return super().__getitem__(name)


def build_trainable(model, rank: int, alpha: float, device, torch, head_hidden: int, seed: int):
    from beam_tensorrt.models.bert import LAYER_DENSE

    gen = torch.Generator().manual_seed(seed)
    base = {k: torch.from_numpy(np.asarray(v, np.float32)).to(device) for k, v in model.encoder.items()
            if not k.endswith("position_ids")}
    lora, trained = {}, {}
    for i in range(model.shape.num_layers):
        for dense in LAYER_DENSE:
            name = f"encoder.layer.{i}.{dense}"
            out_f, in_f = base[name + ".weight"].shape
            a = torch.nn.Parameter((torch.randn(rank, in_f, generator=gen) / math.sqrt(in_f)).to(device))
            b = torch.nn.Parameter(torch.zeros(out_f, rank, device=device))
            lora[name] = (a, b)
            trained[name + ".bias"] = torch.nn.Parameter(base[name + ".bias"].clone())
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            for part in ("weight", "bias"):
                key = f"encoder.layer.{i}.{ln}.{part}"
                trained[key] = torch.nn.Parameter(base[key].clone())
    hidden = model.shape.hidden_size
    head = [(torch.nn.Parameter((torch.randn(hidden, head_hidden, generator=gen) * math.sqrt(2 / hidden)).to(device)),
             torch.nn.Parameter(torch.zeros(head_hidden, device=device))),
            (torch.nn.Parameter((torch.randn(head_hidden, 2, generator=gen) * math.sqrt(1 / head_hidden)).to(device)),
             torch.nn.Parameter(torch.zeros(2, device=device)))]
    weights = LoraWeights(base, lora, trained, alpha / rank)
    params = [p for pair in lora.values() for p in pair] + list(trained.values()) + [p for pair in head for p in pair]
    return weights, head, params


def batches(items, tok, batch_size, device, torch, shuffle_seed=None):
    order = list(range(len(items)))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(order)
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        tb = tok([items[j][0] for j in idx])
        yield (idx, torch.from_numpy(tb.input_ids).to(device), torch.from_numpy(tb.attention_mask).to(device),
               torch.from_numpy(tb.token_type_ids).to(device),
               torch.tensor([items[j][1] for j in idx], device=device))


def forward(weights, head, shape, ids, mask, types, torch, dropout=0.0):
    from beam_tensorrt.backends.torch import TorchOps
    from beam_tensorrt.models.bert import pooled_bert_forward

    pooled = pooled_bert_forward(TorchOps(), weights, [], shape, ids, mask, types)
    if dropout:
        pooled = torch.nn.functional.dropout(pooled, dropout, training=True)
    y = pooled
    for j, (w, b) in enumerate(head):
        y = y @ w + b
        if j < len(head) - 1:
            y = torch.relu(y)
    return y.float()


def evaluate(items, weights, head, shape, tok, device, torch, amp) -> np.ndarray:
    out = np.zeros((len(items), 2), np.float32)
    with torch.no_grad(), amp():
        for idx, ids, mask, types, _ in batches(items, tok, 256, device, torch):
            out[idx] = forward(weights, head, shape, ids, mask, types, torch).cpu().numpy()
    return out


def accuracy(logits: np.ndarray, items) -> float:
    return float((logits.argmax(1) == np.array([y for _, y in items])).mean())


def train_once(args, model, train, val, tok, device, torch, amp):
    torch.manual_seed(args.seed)
    weights, head, params = build_trainable(model, args.rank, args.alpha, device, torch, 256, args.seed)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    steps = args.epochs * math.ceil(len(train) / args.batch_size)
    if args.max_steps:
        steps = min(steps, args.max_steps)
    warmup = max(1, int(0.06 * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (steps - s) / max(1, steps - warmup)))
    best = (-1.0, None, -1)
    step, history = 0, []
    for epoch in range(args.epochs):
        start = time.monotonic()
        for _, ids, mask, types, y in batches(train, tok, args.batch_size, device, torch, args.seed + epoch):
            with amp():
                loss = torch.nn.functional.cross_entropy(
                    forward(weights, head, model.shape, ids, mask, types, torch, args.dropout), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            step += 1
            if step >= steps:
                break
        val_acc = accuracy(evaluate(val, weights, head, model.shape, tok, device, torch, amp), val)
        history.append({"epoch": epoch + 1, "val_accuracy": val_acc, "seconds": round(time.monotonic() - start, 1),
                        "last_loss": loss.item()})
        print(f"  epoch {epoch + 1}: val accuracy {val_acc:.4f} ({history[-1]['seconds']} s)", flush=True)
        if val_acc > best[0]:
            best = (val_acc, snapshot(weights, head), epoch + 1)
        if step >= steps:
            break
    return best, history


def snapshot(weights, head):
    """numpy copies of what ships: LoRA pairs (scale folded into B), trained tensors, head."""
    adapters = {}
    for name, (a, b) in weights.lora.items():
        adapters[name + ".lora_A"] = a.detach().float().cpu().numpy()
        adapters[name + ".lora_B"] = (b.detach().float() * weights.scale).cpu().numpy()
    for name, t in weights.trained.items():
        adapters[name] = t.detach().float().cpu().numpy()
    return adapters, [(w.detach().float().cpu().numpy(), b.detach().float().cpu().numpy()) for w, b in head]


# -- main -----------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="folder with SST-2 train.tsv and dev.tsv")
    ap.add_argument("--out-dir", type=Path, required=True, help="where the two .safetensors files go")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--val", type=int, default=600, help="held-out sentences for model choice and temperature")
    ap.add_argument("--test", type=int, default=600, help="held-out sentences for the reported accuracy")
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32.0)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--dropout", type=float, default=0.1, help="on the pooled embedding, training only")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=0, help="stop early (smoke tests)")
    ap.add_argument("--limit", type=int, default=0, help="use only this many training phrases (smoke tests)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import contextlib

    import torch
    from safetensors.numpy import save_file

    from beam_tensorrt.models import sentiment_minilm
    from beam_tensorrt.tokenization import TextTokenizer

    t0 = time.monotonic()
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    amp = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if on_gpu else contextlib.nullcontext

    phrases = dict(read_tsv(args.data / "train.tsv") + read_tsv(args.data / "dev.tsv"))
    train_all = read_tsv(args.data / "train.tsv")
    dev = read_tsv(args.data / "dev.tsv")
    train_phrases, val, test = honest_split(phrases, args.val, args.test)
    allowed = set(p for p, _ in train_phrases)
    train = [(p, y) for p, y in train_all if p in allowed]  # training stays within train.tsv
    if args.limit:
        train = train[:args.limit]
    print(f"train.tsv {len(train_all)} phrases -> {len(train)} after removing every phrase of "
          f"{len(val)} + {len(test)} held-out sentences", flush=True)

    from beam_tensorrt.models.bert import load_pooled_bert

    enc = sentiment_minilm.MODEL.encoder_dir()
    model = load_pooled_bert(enc, sentiment_minilm.MODEL.head_file)  # the head is replaced by a fresh one
    tok = TextTokenizer(enc / "tokenizer.json", 64)

    (val_acc, (adapters, head), best_epoch), history = train_once(args, model, train, val, tok, device, torch, amp)
    print(f"best epoch {best_epoch}: val accuracy {val_acc:.4f}", flush=True)

    # Evaluate what ships, through numpy-merged weights: the forward pass in float32.
    from beam_tensorrt.models.bert import PooledBert, merge_adapters

    from beam_tensorrt.backends.torch import pooled_bert_module

    module = pooled_bert_module(PooledBert(model.config, merge_adapters(model.encoder, adapters), head)).to(device)

    def logits_of(items):
        out = np.zeros((len(items), 2), np.float32)
        with torch.no_grad():
            for idx, ids, mask, types, _ in batches(items, tok, 256, device, torch):
                out[idx] = module(ids, mask, types).cpu().numpy()
        return out

    val_logits, test_logits, dev_logits = logits_of(val), logits_of(test), logits_of(dev)
    labels = {k: np.array([y for _, y in items]) for k, items in (("val", val), ("test", test), ("dev", dev))}
    temperature = fit_temperature(val_logits, labels["val"])
    report = {
        "command": "python -m scripts.train_sentiment_model " + " ".join(sys.argv[1:]), "seed": args.seed,
        "split_seed": SEED_SPLIT,
        "device": torch.cuda.get_device_name(0) if on_gpu else "cpu", "torch": torch.__version__,
        "hyperparameters": {k: getattr(args, k) for k in ("rank", "alpha", "epochs", "lr", "weight_decay", "dropout",
                                                          "batch_size")},
        "split": {"train_phrases": len(train), "train_tsv_phrases": len(train_all), "val_sentences": len(val),
                  "test_sentences": len(test)},
        "history": history, "best_epoch": best_epoch,
        "accuracy": {"val_sentences": accuracy(val_logits, val), "test_sentences": accuracy(test_logits, test),
                     "dev_tsv_phrases": accuracy(dev_logits, dev)},
        "temperature": temperature,
        "ece_before": {"val": expected_calibration_error(val_logits, labels["val"]),
                       "test": expected_calibration_error(test_logits, labels["test"])},
        "ece_after": {"val": expected_calibration_error(val_logits / temperature, labels["val"]),
                      "test": expected_calibration_error(test_logits / temperature, labels["test"])},
    }
    # Fold the temperature into the last layer: the artifact's probabilities are the calibrated ones.
    head = head[:-1] + [(head[-1][0] / temperature, head[-1][1] / temperature)]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    adapters_path = args.out_dir / "sentiment_minilm_adapters.safetensors"
    head_path = args.out_dir / "sentiment_minilm_head.safetensors"
    meta = {"trained_on": f"SST-2 train.tsv minus held-out sentences ({len(train)} phrases)",
            "val_sentence_accuracy": f"{report['accuracy']['val_sentences']:.4f}",
            "test_sentence_accuracy": f"{report['accuracy']['test_sentences']:.4f}",
            "temperature": f"{temperature:.4f}", "script": "python -m scripts.train_sentiment_model", "seed": str(args.seed)}
    # Low-rank pairs in float16 (half the bytes; merged logits move by < 1e-3, labels do not), the
    # trained biases and LayerNorms in float32.
    save_file({k: np.ascontiguousarray(v, np.float16 if ".lora_" in k else np.float32) for k, v in adapters.items()},
              str(adapters_path), metadata={**meta, "lora_dtype": "float16"})
    save_file({f"head.{j}.{k}": np.ascontiguousarray(v, np.float32)
               for j, (w, b) in enumerate(head) for k, v in (("weight", w), ("bias", b))}, str(head_path), metadata=meta)
    report["files"] = {p.name: p.stat().st_size for p in (adapters_path, head_path)}
    report["onnx_check"] = check_onnx(enc, head_path, adapters_path, test, test_logits / temperature)
    report["seconds"] = round(time.monotonic() - t0, 1)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def check_onnx(encoder_dir: Path, head_path: Path, adapters_path: Path, items, expected: np.ndarray) -> dict:
    """Assemble the artifact as the product does (numpy merge, ONNX builder, no torch) and compare
    ONNX Runtime's logits with the trained model's."""
    from beam_tensorrt.backends.onnxruntime import OnnxRuntimeSession
    from beam_tensorrt.classifier import TextClassifier
    from beam_tensorrt.models.bert import load_pooled_bert
    from beam_tensorrt.models.pooled_bert import build_pooled_bert_artifact

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "artifact"
        artifact = build_pooled_bert_artifact(
            out, name="sentiment-minilm-check", labels=["NEGATIVE", "POSITIVE"],
            model=load_pooled_bert(encoder_dir, head_path, adapters_path), tokenizer_json=encoder_dir / "tokenizer.json",
            torch_weights={"encoder": "none", "head": "none"}, source={})
        got = TextClassifier(artifact, OnnxRuntimeSession(artifact), 64).logits([t for t, _ in items])[0]
        shutil.rmtree(out, ignore_errors=True)
    return {"rows": len(items), "max_abs_logit_diff": float(np.abs(got - expected).max()),
            "label_agreement": float((got.argmax(1) == expected.argmax(1)).mean())}


if __name__ == "__main__":
    sys.exit(main())
