"""PyTorch backend: the encoder in fp16 with SDPA attention and CUDA graphs per shape bucket.

For GPUs without TensorRT, and as the GPU reference. The model is rebuilt in plain torch from the
same safetensors weights the ONNX builder uses (no transformers modeling code at run time); it
covers BERT-architecture encoders with our pooled head, which is what `sentiment-minilm` and
the BERT-base artifacts of `bench/random_bert.py` are. Imported only when this backend is chosen.
"""
from __future__ import annotations

import json
import logging
import threading
from typing import Any, Iterable, Mapping

import numpy as np

from ..artifact import ModelArtifact
from .base import BackendOptions

log = logging.getLogger(__name__)

# Row counts are padded up to one of these so a handful of CUDA graphs cover every batch.
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
# A shape gets a CUDA graph once it has run this many times eagerly: a capture costs about as much
# as a few eager runs, and a bounded run over ragged text meets many shapes only once or twice.
GRAPH_AFTER = 2
# Rows per group on the GPU: measured on an H100 with BERT-base over SST-2 (bench/NOTES.md), 128-row
# groups of similar length beat 256 (more padding) and 64 (GEMMs too small to fill the GPU).
GPU_GROUP_ROWS = 128


def torch_spec(artifact: ModelArtifact) -> dict[str, Any]:
    spec = artifact.manifest.source.get("torch")
    if not spec:
        raise ValueError(
            f"artifact {str(artifact.path)!r} carries no PyTorch weights: the torch backend runs "
            "BERT encoders with a pooled head (sentiment-minilm, bench/random_bert.py); "
            "use backend onnxruntime or tensorrt for this artifact")
    return spec


def load_weights(artifact: ModelArtifact) -> tuple[dict, dict[str, np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
    """(encoder config, encoder weights, head layers) for an artifact with a torch spec."""
    from safetensors.numpy import load_file

    spec = torch_spec(artifact)
    if spec["encoder"].startswith("package:"):
        from ..models import sentiment_minilm

        enc_dir = sentiment_minilm.encoder_dir()
    else:
        enc_dir = artifact.path / spec["encoder"]
    config = json.loads((enc_dir / "config.json").read_text())
    weights = load_file(str(enc_dir / "model.safetensors"))
    head_tensors = load_file(str(artifact.path / spec["head"]))
    head = []
    j = 0
    while f"head.{j}.weight" in head_tensors:
        head.append((head_tensors[f"head.{j}.weight"], head_tensors[f"head.{j}.bias"]))
        j += 1
    return config, weights, head


def build_module(config: dict, weights: Mapping[str, np.ndarray], head, normalize: bool = True):
    import torch
    import torch.nn.functional as F

    H, nh, L = int(config["hidden_size"]), int(config["num_attention_heads"]), int(config["num_hidden_layers"])
    eps = float(config.get("layer_norm_eps", 1e-12))

    def t(name: str):
        return torch.from_numpy(np.ascontiguousarray(weights[name], dtype=np.float32))

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            p = torch.nn.ParameterDict()
            for name in weights:
                if name.startswith(("embeddings.", "encoder.")) and not name.endswith("position_ids"):
                    p[name.replace(".", "__")] = torch.nn.Parameter(t(name), requires_grad=False)
            self.p = p
            self.head = torch.nn.ParameterList(
                [torch.nn.Parameter(torch.from_numpy(np.asarray(w, np.float32)), requires_grad=False) for w, _ in head] +
                [torch.nn.Parameter(torch.from_numpy(np.asarray(b, np.float32)), requires_grad=False) for _, b in head])
            self.n_head = len(head)

        def w(self, name: str):
            return self.p[name.replace(".", "__")]

        def forward(self, input_ids, attention_mask, token_type_ids):
            B, S = input_ids.shape
            x = (F.embedding(input_ids, self.w("embeddings.word_embeddings.weight"))
                 + self.w("embeddings.position_embeddings.weight")[:S]
                 + F.embedding(token_type_ids, self.w("embeddings.token_type_embeddings.weight")))
            x = F.layer_norm(x, (H,), self.w("embeddings.LayerNorm.weight"), self.w("embeddings.LayerNorm.bias"), eps)
            keep = attention_mask[:, None, None, :].to(torch.bool)
            for i in range(L):
                pre = f"encoder.layer.{i}."

                def lin(y, name):
                    return F.linear(y, self.w(pre + name + ".weight"), self.w(pre + name + ".bias"))

                q, k, v = (lin(x, f"attention.self.{n}").view(B, S, nh, H // nh).transpose(1, 2)
                           for n in ("query", "key", "value"))
                ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
                ctx = ctx.transpose(1, 2).reshape(B, S, H)
                x = F.layer_norm(lin(ctx, "attention.output.dense") + x, (H,),
                                 self.w(pre + "attention.output.LayerNorm.weight"),
                                 self.w(pre + "attention.output.LayerNorm.bias"), eps)
                inter = F.gelu(lin(x, "intermediate.dense"))
                x = F.layer_norm(lin(inter, "output.dense") + x, (H,), self.w(pre + "output.LayerNorm.weight"),
                                 self.w(pre + "output.LayerNorm.bias"), eps)
            m = attention_mask.unsqueeze(-1).to(x.dtype)
            pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
            if normalize:
                pooled = F.normalize(pooled.float(), dim=-1).to(x.dtype)
            y = pooled
            for j in range(self.n_head):
                y = y @ self.head[j] + self.head[self.n_head + j]
                if j < self.n_head - 1:
                    y = torch.relu(y)
            return y.float()

    return Encoder().eval()


class TorchSession:
    name = "torch"
    thread_safe = True  # launches are serialised inside (graphs and their static buffers are shared)

    def __init__(self, artifact: ModelArtifact, options: BackendOptions = BackendOptions()):
        import torch

        self._torch = torch
        device = options.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError("backend 'torch' with device cuda: no CUDA device is visible to PyTorch")
        self.device = torch.device(device)
        self.on_gpu = self.device.type == "cuda"
        self.dtype = torch.float16 if (self.on_gpu and options.fp16) else torch.float32
        config, weights, head = load_weights(artifact)
        self.max_positions = int(config["max_position_embeddings"])
        self.module = build_module(config, weights, head).to(self.device, self.dtype)
        self.input_names = ["input_ids", "attention_mask", "token_type_ids"]
        self.use_graphs = self.on_gpu and options.cuda_graphs
        self.graph_after = GRAPH_AFTER
        self._graphs: dict[tuple[int, int], tuple[Any, Any, Any]] = {}  # (graph, static inputs, static logits)
        self._seen: dict[tuple[int, int], int] = {}
        # One memory pool for every graph: launches are serialised onto one stream, so graphs never
        # run at once and can share their scratch memory (a private pool per graph would multiply it).
        self._pool = torch.cuda.graph_pool_handle() if self.use_graphs else None
        self._lock = threading.Lock()
        self.token_budget = 65536 if self.on_gpu else 512
        self.max_group_rows = GPU_GROUP_ROWS if self.on_gpu else 256
        log.info("torch session on %s (%s, CUDA graphs %s)", self.device, self.dtype, "on" if self.use_graphs else "off")

    def run(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.run_many([feeds])[0]

    def run_many(self, feeds_list: Iterable[Mapping[str, np.ndarray]]) -> list[np.ndarray]:
        """Logits for each group. Every group is queued on the GPU before any result is read, so
        the host prepares group k+1 (``feeds_list`` may be a generator that tokenizes it) while
        the GPU computes group k; one sync at the end.

        The lock is held only while a group is queued (graphs share static buffers and one memory
        pool): another thread's tokenization and its wait for the GPU run outside it, so bundles
        processed by several threads of one worker overlap their host work with the GPU."""
        torch = self._torch
        pending = []
        with torch.inference_mode():
            for feeds in feeds_list:  # tokenizes the next group: outside the lock
                with self._lock:
                    pending.append(self._launch(feeds))
            if not pending:
                return []
            sizes = [int(p.shape[0]) for p in pending]
            if not self.on_gpu:
                return [p.numpy() for p in pending]
            with self._lock:  # enqueue only; a graph capture in another thread must not see it
                host = torch.cat(pending).to("cpu", non_blocking=True)
                done = torch.cuda.Event()
                done.record()
        done.synchronize()  # this call's work only; releases the GIL while it waits
        logits = host.numpy()
        bounds = np.cumsum([0] + sizes)
        return [logits[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def _launch(self, feeds: Mapping[str, np.ndarray]):
        """Queue one group; returns its (device) logits without waiting for them."""
        rows, seq = feeds["input_ids"].shape
        bucket = next((b for b in ROW_BUCKETS if b >= rows), rows)
        key = (bucket, seq)
        if self.use_graphs and key not in self._graphs:
            self._seen[key] = self._seen.get(key, 0) + 1
        if not self.use_graphs or (key not in self._graphs and self._seen[key] <= self.graph_after):
            # Eager on the exact shape: a shape seen once or twice is not worth a capture.
            return self.module(*self._inputs(feeds, rows).to(self.device, non_blocking=True))
        graph, static_in, static_out = self._graph_for(bucket, seq)
        static_in.copy_(self._inputs(feeds, bucket), non_blocking=True)
        graph.replay()
        # A copy, queued behind the replay: the next replay (of any graph in the shared pool)
        # may overwrite static_out.
        return static_out[:rows].clone()

    def _inputs(self, feeds: Mapping[str, np.ndarray], rows: int):
        """The group's inputs stacked in one host tensor of ``rows`` rows (padding rows attend to
        one token, so they give no NaNs): one host-to-device copy per group instead of three. On a
        GPU it is pinned, so the copy is truly asynchronous; torch's pinned-memory cache keeps the
        buffer until the copy has run."""
        n, seq = feeds["input_ids"].shape
        host = self._torch.empty((len(self.input_names), rows, seq), dtype=self._torch.int64, pin_memory=self.on_gpu)
        h = host.numpy()
        for i, name in enumerate(self.input_names):
            h[i, :n] = feeds[name]
        if rows > n:
            h[:, n:] = 0
            h[self.input_names.index("attention_mask"), n:, 0] = 1
        return host

    def _graph_for(self, rows: int, seq: int):
        torch = self._torch
        key = (rows, seq)
        if key not in self._graphs:
            static_in = torch.zeros((len(self.input_names), rows, seq), dtype=torch.int64, device=self.device)
            static_in[self.input_names.index("attention_mask"), :, 0] = 1
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm up kernels and the allocator outside capture
                    self.module(*static_in)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            # thread_local: other threads may wait on their own events while this one captures.
            with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
                static_out = self.module(*static_in)
            self._graphs[key] = (graph, static_in, static_out)
            log.info("captured CUDA graph for batch %d x %d tokens", rows, seq)
        return self._graphs[key]

    def close(self) -> None:
        self._graphs.clear()
        self.module = None
