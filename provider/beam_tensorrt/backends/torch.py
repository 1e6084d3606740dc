"""PyTorch backend: the model's forward pass run eagerly in fp16 with SDPA attention, CUDA graphs
for recurring shapes.

For GPUs without TensorRT, and as the GPU reference. It runs ``models.bert.pooled_bert_forward``
(the definition the ONNX builder records) on the weights ``models.artifact_weights`` loads, so it
covers pooled-BERT artifacts: ``sentiment-minilm`` and those of ``bench/random_bert.py``. No
transformers code at run time. Imported only when this backend is chosen.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Iterable, Mapping

import numpy as np

from ..artifact import ModelArtifact
from ..models import artifact_weights
from ..models.bert import PooledBert, pooled_bert_forward
from ..tokenization import PACKED_INPUTS, PADDED_INPUTS
from .base import BackendOptions, Feeds, InferenceSession
from ..errors import UserError

log = logging.getLogger(__name__)

# Row counts are padded up to one of these so a handful of CUDA graphs cover every group.
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
# A shape gets a CUDA graph once it has run this many times eagerly: a capture costs about as much
# as a few eager runs, and a bounded run over ragged text meets many shapes only once or twice.
GRAPH_AFTER = 2
# Rows per group on the GPU: measured on an H100 with BERT-base over SST-2 (bench/NOTES.md), 128-row
# groups of similar length beat 256 (more padding) and 64 (GEMMs too small to fill the GPU). Packed,
# a group is up to 128 sequences of PACK_WIDTH tokens.
GPU_GROUP_ROWS = 128


class TorchOps:
    """``BertOps`` on torch tensors; one instance per forward call (it caches the attention mask).
    ``packed``: the packed layout (segment ids instead of an attention mask; ``models.bert.BertOps``)."""

    def __init__(self, packed: bool = False) -> None:
        import torch
        import torch.nn.functional as F

        self.torch, self.F = torch, F
        self.packed = packed
        self._keep: Any = None

    def embed(self, table, ids):
        return self.F.embedding(ids, table)

    def positions(self, table, like):
        return table[:like.shape[1]]

    def add(self, a, b):
        return a + b

    def layer_norm(self, x, gamma, beta, eps):
        return self.F.layer_norm(x, (x.shape[-1],), gamma, beta, eps)

    def dense(self, x, weight, bias):
        return self.F.linear(x, weight, bias)

    def head_dense(self, x, weight, bias):
        return x @ weight + bias

    def gelu(self, x):
        return self.F.gelu(x)

    def relu(self, x):
        return self.torch.relu(x)

    def attention(self, q, k, v, mask, num_heads, head_size):
        if self._keep is None:
            if self.packed:  # same segment, and not padding: [B, 1, S, S]
                self._keep = ((mask[:, :, None] == mask[:, None, :]) & (mask[:, None, :] > 0))[:, None]
            else:
                self._keep = mask[:, None, None, :].to(self.torch.bool)
        b, s, _ = q.shape
        q, k, v = (t.view(b, s, num_heads, head_size).transpose(1, 2) for t in (q, k, v))
        ctx = self.F.scaled_dot_product_attention(q, k, v, attn_mask=self._keep)
        return ctx.transpose(1, 2).reshape(b, s, num_heads * head_size)

    def mean_pool(self, x, mask):
        if self.packed:  # one-hot [B, slots, S]: slot j takes segment j + 1
            slots = self.torch.arange(1, mask.shape[1] + 1, device=mask.device)
            onehot = (mask[:, None, :] == slots[None, :, None]).to(x.dtype)
            return (onehot @ x) / onehot.sum(-1, keepdim=True).clamp(min=1e-4)
        m = mask.unsqueeze(-1).to(x.dtype)
        return (x * m).sum(1) / m.sum(1).clamp(min=1e-9)

    def l2_normalize(self, x):
        return self.F.normalize(x.float(), dim=-1).to(x.dtype)


def pooled_bert_module(model: PooledBert):
    """A ``torch.nn.Module`` (fp32, CPU) whose forward is ``pooled_bert_forward``; move it with
    ``.to(device, dtype)``."""
    import torch

    class PooledBertModule(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for name, value in model.encoder.items():
                if name.startswith(("embeddings.", "encoder.")) and not name.endswith("position_ids"):
                    self.register_buffer(name.replace(".", "__"), torch.from_numpy(np.asarray(value, np.float32)))
            for j, (w, b) in enumerate(model.head):
                self.register_buffer(f"head__{j}__weight", torch.from_numpy(np.asarray(w, np.float32)))
                self.register_buffer(f"head__{j}__bias", torch.from_numpy(np.asarray(b, np.float32)))
            self.shape, self.n_head, self.normalize = model.shape, len(model.head), model.normalize
            self._views: Any = None

        def _weights(self):
            """(checkpoint-named weights, head) over the current buffers; rebuilt after ``.to()``,
            which replaces them."""
            anchor = self.embeddings__word_embeddings__weight
            if self._views is None or self._views[0] is not anchor:
                buffers = dict(self.named_buffers())
                weights = {n.replace("__", "."): t for n, t in buffers.items() if not n.startswith("head__")}
                head = [(buffers[f"head__{j}__weight"], buffers[f"head__{j}__bias"]) for j in range(self.n_head)]
                self._views = (anchor, weights, head)
            return self._views[1], self._views[2]

        def forward(self, input_ids, mask, token_type_ids, position_ids=None):
            """Padded: (input_ids, attention_mask, token_type_ids) -> [B, labels]. Packed: with
            ``position_ids``, ``mask`` holds segment ids -> [B, S, labels] (models.bert.BertOps)."""
            weights, head = self._weights()
            ops = TorchOps(packed=position_ids is not None)
            return pooled_bert_forward(ops, weights, head, self.shape, input_ids, mask, token_type_ids,
                                       self.normalize, position_ids=position_ids).float()

    return PooledBertModule().eval()


class TorchSession(InferenceSession):
    """The model on a PyTorch device. Launches are serialised by a lock (CUDA graphs share static
    buffers and one memory pool); tokenization and waiting for the GPU happen outside it, so several
    threads of one worker overlap their host work with the device."""

    name = "torch"

    def __init__(self, artifact: ModelArtifact, options: BackendOptions = BackendOptions()):
        import torch

        self._torch = torch
        device = options.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError("backend 'torch' with device cuda: no CUDA device is visible to PyTorch")
        self.device = torch.device(device)
        self.on_gpu = self.device.type == "cuda"
        self.dtype = torch.float16 if (self.on_gpu and options.precision != "fp32") else torch.float32
        self.module = pooled_bert_module(artifact_weights(artifact)).to(self.device, self.dtype)
        self.packed = options.packing  # the module packs whenever it is given position ids
        self.input_names = list(PACKED_INPUTS if self.packed else PADDED_INPUTS)
        self.use_graphs = self.on_gpu and options.cuda_graphs
        self.graph_after = GRAPH_AFTER
        self._graphs: dict[tuple[int, int], tuple[Any, Any, Any]] = {}  # (graph, static inputs, static logits)
        self._seen: dict[tuple[int, int], int] = {}
        # One memory pool for every graph: launches are serialised onto one stream, so graphs never
        # run at once and can share their scratch memory (a private pool per graph would multiply it).
        self._pool = torch.cuda.graph_pool_handle() if self.use_graphs else None
        self._lock = threading.Lock()
        self.token_budget = 65536 if self.on_gpu else 512
        if self.packed:  # sequences of PACK_WIDTH tokens a group
            self.max_group_rows = GPU_GROUP_ROWS if self.on_gpu else 4
        else:
            self.max_group_rows = GPU_GROUP_ROWS if self.on_gpu else 256
        log.info("torch session on %s (%s, CUDA graphs %s)", self.device, self.dtype, "on" if self.use_graphs else "off")

    def run_many(self, groups: Iterable[Feeds]) -> list[np.ndarray]:
        """Logits for each group. Every group is queued on the device before any result is read, so
        the host prepares group k+1 (``groups`` may be a generator that tokenizes it) while the
        GPU computes group k; one sync at the end."""
        torch = self._torch
        pending = []
        with torch.inference_mode():
            for feeds in groups:  # tokenizes the next group: outside the lock
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
            h[1, n:, 0] = 1  # the mask (or segment ids) input: one attended token, no NaN
        return host

    def _graph_for(self, rows: int, seq: int):
        torch = self._torch
        key = (rows, seq)
        if key not in self._graphs:
            static_in = torch.zeros((len(self.input_names), rows, seq), dtype=torch.int64, device=self.device)
            static_in[1, :, 0] = 1  # the mask (or segment ids) input
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
