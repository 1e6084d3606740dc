"""``beam-tensorrt export``: a Hugging Face checkpoint -> an artifact directory (needs torch)."""
from __future__ import annotations


def add(sub) -> None:
    p = sub.add_parser("export", help="turn a Hugging Face sequence-classification checkpoint into an artifact",
                       description="Export a local Hugging Face checkpoint (BERT, DistilBERT, RoBERTa, MiniLM) to an "
                                   "artifact directory: ONNX, tokenizer, manifest. Needs torch: "
                                   "pip install 'beam-tensorrt[export]'.")
    p.add_argument("checkpoint", help="checkpoint directory (config.json, weights, tokenizer.json)")
    p.add_argument("--out", required=True, help="artifact directory to write")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    p.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime vs PyTorch logits check")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..build.export import export_checkpoint

    artifact = export_checkpoint(args.checkpoint, args.out, opset=args.opset, verify=not args.no_verify)
    print(f"wrote {artifact.path} (labels: {', '.join(artifact.manifest.labels)})")
    return 0
