#!/usr/bin/env python3
"""Draw the benchmark JSON files under docs/bench/ as PNG bar charts (sentences/s, log scale).

    python bench/plot_results.py   # needs matplotlib: pip install 'beam-tensorrt[bench]'
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "bench"


def bar_chart(result: dict, title: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = result["sentences_per_s"]
    names = list(rates)
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(names) + 1.2))
    colors = ["#4C72B0" if "ClassifyText" in n else "#999999" for n in names]
    ax.barh(names[::-1], [rates[n] for n in names][::-1], color=colors[::-1])
    ax.set_xscale("log")
    ax.set_xlabel("sentences per second (log scale)")
    fig.suptitle(title, fontsize=9)
    for i, n in enumerate(names[::-1]):
        ax.text(rates[n], i, f" {rates[n]:,.0f}", va="center", fontsize=8)
    steady = result.get("steady_sentences_per_s", {})
    if steady:  # start-up excluded: drawn as an outline over the end-to-end bar
        ys = [i for i, n in enumerate(names[::-1]) if n in steady]
        ax.barh(ys, [steady[names[::-1][i]] for i in ys], fill=False, edgecolor="#C44E52", linestyle="--",
                label="steady state (first to last row out)")
        for i in ys:
            ax.text(steady[names[::-1][i]], i - 0.3, f" steady {steady[names[::-1][i]]:,.0f}", fontsize=7,
                    color="#C44E52")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    print(f"wrote {out}")


def latency_chart(result: dict, title: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["results"]
    labels = [f"{r['rate_per_s']:,.0f} rows/s" for r in rows]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r["p50_ms"] for r in rows], width=0.4, label="p50")
    ax.bar([i + 0.2 for i in x], [r["p99_ms"] for r in rows], width=0.4, label="p99")
    ax.set_xticks(list(x), labels)
    ax.set_ylabel("ms from emission to classified row")
    ax.legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    print(f"wrote {out}")


def main() -> int:
    charts = {
        "cpu-2core-batch256.json": "CPU, 2 cores: all-MiniLM-L6-v2 on 6,735 SST-2 phrases, Beam batch 256",
        "gpu-h100-bert-base.json": "H100: BERT-base shape (random weights), 100k SST-2 phrases (and 1M where marked); baselines at Beam batch 256",
        "gpu-h100-bert-base-10m.json": "H100: BERT-base shape (random weights), 100k SST-2 phrases and 10M with 8 SDK processes",
        "gpu-h100-trt-vs-torch.json": "H100: TensorRT vs PyTorch (padded groups), BERT-base shape, 100k SST-2 phrases, 1M with 8 SDK processes",
        "gpu-h100-packed.json": "H100: packed sequences, TensorRT and PyTorch, BERT-base shape, 100k SST-2 phrases, 1M with 8 SDK "
                                "processes; the seed's TensorRT handler pattern",
        "gpu-h100-packed-10m.json": "H100: packed TensorRT, BERT-base shape, 100k SST-2 phrases and 10M with 8 SDK processes",
        "gpu-h100-packed-mixed-chunks-1m.json": "H100: packed, mixed-length chunks; TensorRT and PyTorch, BERT-base shape, "
                                                "100k SST-2 phrases, 1M with 8 SDK processes",
        "gpu-h100-prestarted-pool-1m-run2.json": "H100: TensorRT and PyTorch, BERT-base shape, 100k SST-2 phrases; 1M with 8 "
                                                 "SDK processes spawned by the runner or prestarted by the worker pool",
        "gpu-h100-prestarted-pool-preload-1m.json": "H100: TensorRT and PyTorch, BERT-base shape, 50k SST-2 phrases; 1M with 8 SDK "
                                                    "processes: spawned by the runner, prestarted, prestarted with the model",
        "gpu-h100-arrow-batches-1m.json": "H100, 1 SDK process: ClassifyText vs ClassifyTextBatches (Parquet), "
                                          "BERT-base shape, 100k and 1M rows",
        "gpu-h100-seed-pattern-arrow-batches.json": "H100: ClassifyText and ClassifyTextBatches vs the seed's pattern (Beam's "
                                                    "TensorRTEngineHandlerNumPy), 1 process, 100k rows",
        "gpu-h100-torch-prestarted-pool-preload-1m.json": "H100: PyTorch, 8 SDK processes on 1M rows: spawned, prestarted, "
                                                          "prestarted with the model preloaded",
        "gpu-h100-padded-baselines.json": "H100: padded groups, TensorRT and PyTorch, BERT-base shape, 100k SST-2 phrases; "
                                          "Beam's HF pipeline and PyTorch handlers at Beam batch 256",
    }
    latencies = {
        "gpu-h100-streaming-latency.json": "H100, Prism streaming: ClassifyText per-row latency, BERT-base shape, "
                                           "max_batch_duration_secs=1",
        "gpu-h100-flink-streaming-latency-4workers-run2.json": "H100, Flink streaming, 4 SDK workers (worker pool), no row "
                                                               "lost: per-row latency, BERT-base shape, TensorRT",
        "gpu-h100-flink-streaming-latency-loopback-bundle100.json": "H100, Flink streaming, 1 SDK process (LOOPBACK), no "
                                                                    "row lost: per-row latency, BERT-base shape, TensorRT",
    }
    for draw, titles in ((bar_chart, charts), (latency_chart, latencies)):
        for name, title in titles.items():
            path = DOCS / name
            if path.is_file():
                draw(json.loads(path.read_text()), title, path.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
