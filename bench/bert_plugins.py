#!/usr/bin/env python3
"""TensorRT's BERT plugins (variable sequence length, fp16 and int8) against the product's fp16 plan.

Issue 27 asked for int8 plans built from NVIDIA's BERT plugins where they measure better than the
project's own. This builds, for one model on one GPU, in one run:

- the plan the product builds (``fp16 packed``: the model's packed fp16 ONNX graph, strongly typed,
  through the engine cache as a worker builds it) -- the baseline;
- plugin plans (``bench/plugin_network.py``): fp16 and int8, each with exact GELU (as the model)
  and with GELU's tanh approximation (which TensorRT fuses into the projection before it); int8
  ranges measured on SST-2 train phrases with ONNX Runtime;

then times each on the same groups ClassifyText forms (``--rows`` rows tokenized and packed at a
time, as the classifier does): GPU milliseconds a group takes (a CUDA graph of it replayed, timed by
CUDA events: the device's work alone, no host), and compares every plugin plan's labels with the
baseline's on all SST-2 dev phrases. Prints a table with each plan's ratio to the baseline.

    python -m bench.bert_plugins --data ../shared/data/sst2 --model DIR [--rows 256] [--json FILE]

Needs TensorRT 10.x with its plugin library (the plugins are deprecated in 10.15 and gone in 11)
and, for the plugin library, ``libcublas.so.12`` on the library path.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common import device, write_json

# Most tokens a group may have: as the product's packed plans (128 sequences of 128). The plugin
# network's pooling takes a [rows, tokens] matrix, 1 GB at this size (4 GB at twice it: too large).
MAX_TOKENS = 128 * 128


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="SST-2 folder (train.tsv, dev.tsv)")
    ap.add_argument("--model", default="sentiment-minilm", help="a pooled-BERT model name or artifact directory")
    ap.add_argument("--rows", type=int, default=256, help="rows tokenized and packed into one group")
    ap.add_argument("--calibration-rows", type=int, default=400, help="SST-2 train phrases measuring int8 ranges")
    ap.add_argument("--variants", default="fp16-erf,fp16-tanh,int8-erf,int8-tanh")
    ap.add_argument("--engine-cache", default=None, help="where the product's plan is built or found")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import beam_tensorrt.classifier as classifier_module
    from beam_tensorrt.backends import BackendOptions
    from beam_tensorrt.backends.tensorrt.loader import plan_for
    from beam_tensorrt.backends.tensorrt.platform import import_tensorrt, runtime_info
    from beam_tensorrt.classifier import TextClassifier
    from beam_tensorrt.models import artifact_weights, resolve_model
    from beam_tensorrt.tokenization import TextTokenizer
    from bench import plugin_network as pn
    from bench.precision import sst2_sets

    calibration, _, dev = sst2_sets(args.data)
    artifact = resolve_model(args.model)
    weights = artifact_weights(artifact)
    max_seq_len = BackendOptions().max_seq_len
    info = runtime_info(import_tensorrt())
    why = pn.unsupported(weights, info.compute_capability, max_seq_len) or pn.plugins_available(import_tensorrt())
    if why:
        print(f"the BERT plugins cannot run this model here: {why}", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="bert-plugins-"))
    try:
        options = BackendOptions(engine_cache=args.engine_cache or str(folder / "engines"))
        baseline_plan, _ = plan_for(artifact, options)
        # The classifier's grouping (packed, PACK_CHUNK_ROWS rows at a time), on the baseline's session.
        classifier_module.PACK_CHUNK_ROWS = args.rows
        clf = TextClassifier.open(artifact, "tensorrt", options)
        group = next(iter(clf.groups(calibration[:args.rows])))[1]
        dev_groups = list(clf.groups(dev))
        clf.close()

        results: dict = {"model": args.model, "device": device(), "tensorrt": info.trt_version,
                         "rows_per_group": args.rows, "group_tokens": int(group.real_tokens),
                         "group_rows": len(group.sequence), "dev_rows": len(dev), "plans": {}}

        def packed_arrays(batch) -> dict:
            return batch.feeds(["input_ids", "segment_ids", "token_type_ids", "position_ids"])

        def stream_arrays(batch) -> tuple[dict, pn.VarlenFeeds]:
            f = pn.to_varlen(batch.input_ids, batch.segment_ids, batch.token_type_ids)
            return {"input_ids": f.input_ids, "token_type_ids": f.token_type_ids, "cu_seqlens": f.cu_seqlens,
                    "max_seqlen": np.zeros(max(1, f.max_seqlen), np.int32)}, f

        runner = pn.EngineRunner(baseline_plan)
        base_ms = runner.gpu_ms(packed_arrays(group))
        reference = np.full((len(dev), weights.num_labels), np.nan, np.float32)
        for rows, batch in dev_groups:
            reference[rows] = batch.rows_of(runner.run(packed_arrays(batch)))
        runner.close()
        results["plans"]["fp16 packed (product)"] = {"gpu_ms_per_group": round(base_ms, 4)}
        print(f"fp16 packed (product): {base_ms:.3f} ms a group", flush=True)

        ranges = None
        variants = [v.split("-") for v in args.variants.split(",") if v]
        if any(p == "int8" for p, _ in variants):
            tokenizer = TextTokenizer(artifact.tokenizer_path, max_seq_len)
            texts = calibration[::max(1, len(calibration) // args.calibration_rows)][:args.calibration_rows]
            batches = [tokenizer(texts[i:i + 64]) for i in range(0, len(texts), 64)]
            names = artifact.manifest.input_names
            ranges = pn.activation_ranges(artifact.onnx_path, [b.feeds(names) for b in batches],
                                          [b.attention_mask for b in batches], weights.shape.num_layers)
        for precision, gelu in variants:
            name = f"{precision} plugins, {gelu} GELU"
            plan = folder / f"{precision}-{gelu}.plan"
            build_s = pn.build_plugin_plan(weights, artifact.manifest.onnx_sha256, plan,
                                           max_tokens=MAX_TOKENS, opt_tokens=int(group.real_tokens),
                                           max_row_tokens=max_seq_len, ranges=ranges if precision == "int8" else None,
                                           gelu=gelu, timing_cache=folder / "timing.cache")
            runner = pn.EngineRunner(plan)
            ms = runner.gpu_ms(stream_arrays(group)[0])
            got = np.full_like(reference, np.nan)
            for rows, batch in dev_groups:
                arrays, f = stream_arrays(batch)
                got[rows] = batch.rows_of(pn.to_packed(runner.run(arrays), f))
            runner.close()
            r = results["plans"][name] = {
                "build_s": build_s, "gpu_ms_per_group": round(ms, 4), "vs_fp16_packed": round(base_ms / ms, 3),
                "dev_agreement_with_fp16_packed": round(float((got.argmax(1) == reference.argmax(1)).mean()), 5),
                "max_abs_logit_difference": round(float(np.nanmax(np.abs(got - reference))), 5),
                "nan_rows": int(np.isnan(got).any(axis=1).sum())}
            print(f"{name}: {json.dumps(r)}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # plans of ~200 MB each
    print_table(results)
    write_json(args.json, results)
    return 0


def print_table(results: dict) -> None:
    rows, tokens = results["group_rows"], results["group_tokens"]
    print(f"\n{results['model']} on {results['device']}, TensorRT {results['tensorrt']}: groups of {rows} rows "
          f"({tokens} tokens), GPU time a group (CUDA graph replays)")
    print(f"{'plan':<28} {'build s':>8} {'ms/group':>9} {'rows/s (GPU)':>13} {'vs fp16 packed':>15} "
          f"{'dev agreement':>14} {'max |dlogit|':>13}")
    for name, r in results["plans"].items():
        ms = r["gpu_ms_per_group"]
        print(f"{name:<28} {r.get('build_s', float('nan')):>8.1f} {ms:>9.3f} {rows / ms * 1000:>13,.0f} "
              f"{r.get('vs_fp16_packed', 1.0):>15.2f} {r.get('dev_agreement_with_fp16_packed', 1.0):>14.2%} "
              f"{r.get('max_abs_logit_difference', 0.0):>13.4f}")


if __name__ == "__main__":
    sys.exit(main())
