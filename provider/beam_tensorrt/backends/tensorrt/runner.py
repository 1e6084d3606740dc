"""TensorRT runner: a plan checked against its metadata, run through the ``InferenceSession`` contract.

Layout on the device, and why:

- One *lane* per optimization profile: an execution context set to that profile, a CUDA stream,
  device buffers sized for the profile, and a lock held only while work is queued. TensorRT
  requires that execution contexts running at once use different profiles, so every thread
  queues work for a profile on that profile's one context and stream; work for different
  profiles (short and long text) runs on different streams.
- Two pinned host *slots* per calling thread, each with an event: the host fills one slot's
  inputs while the device works on the other's group, and a slot is reused only once its
  copies are done.
- Rows are padded up to a few buckets, and a (rows, length) shape seen more than
  ``graph_after`` times gets a CUDA graph of its ``execute_async_v3``, replayed afterwards.

Unlike Beam's stock ``TensorRTEngineHandlerNumPy`` (one input, bound at the engine's static
shape) it binds every input by name at each group's own shape.
"""
from __future__ import annotations

import ctypes
import logging
import threading
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterable, Optional

import numpy as np

from ..base import Feeds, InferenceSession
from ...tokenization import PACKED_INPUTS, PADDED_INPUTS
from .platform import cuda_check, cudart_module, import_tensorrt, runtime_info
from .metadata import EngineMismatch, PlanMetadata, mismatches, only_tuning_differs
from .profiles import Profile, max_rows_for, select_profile


if TYPE_CHECKING:  # checked against tensorrt-stubs; at run time the module is found lazily
    import tensorrt

log = logging.getLogger(__name__)

# Row counts are padded up to one of these (capped by the profile), so a bounded set of CUDA
# graphs covers every group: fine steps where groups usually are (up to 256 rows), coarse above.
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512)
# A shape gets a CUDA graph once it has run this many times eagerly: capturing costs about as much
# as a few runs, and a bounded job over ragged text meets many shapes only once or twice.
GRAPH_AFTER = 2
# Groups the classifier forms: as for the PyTorch backend, measured best on an H100 (bench/NOTES.md):
# up to 128 rows of similar length; a group too large for a profile is split here.
GROUP_ROWS, GROUP_TOKENS = 128, 65536


def bucket_rows(rows: int, limit: int) -> int:
    return min(next((b for b in ROW_BUCKETS if b >= rows), rows), max(rows, limit))


class _CapturingLogger:
    """Keeps TensorRT's error messages so a refusal can be reported in words, not a None."""

    def __init__(self, trt: ModuleType):
        outer = self

        class Logger(trt.ILogger):  # type: ignore[misc, name-defined]
            def __init__(self) -> None:
                trt.ILogger.__init__(self)

            def log(self, severity, msg):  # noqa: A003 (TensorRT's name)
                if severity <= trt.ILogger.Severity.WARNING:
                    outer.messages.append(str(msg))
                    log.warning("TensorRT: %s", msg)

        self.messages: list[str] = []
        self.logger = Logger()


def _pinned_view(ptr: int, nbytes: int, dtype: Any) -> np.ndarray:
    return np.frombuffer(memoryview((ctypes.c_byte * nbytes).from_address(ptr)).cast("B"), dtype=dtype)


class _Lane:
    """One optimization profile's execution context, stream and device buffers."""

    def __init__(self, session: "TensorRTSession", index: int):
        cudart = session.cudart
        self.index = index
        self.profile = session.profiles[index]
        self.max_rows = self.profile.max_batch
        # Device memory for this profile's shapes only, not the largest profile's in every lane.
        self.context: tensorrt.IExecutionContext = session.engine.create_execution_context(
            session.trt.ExecutionContextAllocationStrategy.ON_PROFILE_CHANGE)
        if self.context is None:
            raise RuntimeError("TensorRT could not create an execution context (out of GPU memory?)")
        self.stream = cuda_check(cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking))
        if not self.context.set_optimization_profile_async(index, self.stream):
            raise RuntimeError(f"TensorRT refused optimization profile {index}")
        tokens = self.profile.max_batch * self.profile.max_seq
        self.dev_in = {name: cuda_check(cudart.cudaMalloc(tokens * dtype.itemsize))
                       for name, dtype in session.input_dtypes.items()}
        results = tokens if session.packed else self.max_rows
        self.dev_out = cuda_check(cudart.cudaMalloc(results * session.num_labels * session.output_dtype.itemsize))
        for name, ptr in self.dev_in.items():
            self.context.set_tensor_address(name, ptr)
        self.context.set_tensor_address(session.output_name, self.dev_out)
        self.lock = threading.Lock()
        self.shape: Optional[tuple[int, int]] = None
        self.seen: dict[tuple[int, int], int] = {}
        self.graphs: dict[tuple[int, int], Any] = {}

    def free(self, cudart: Any) -> None:
        for graph in self.graphs.values():
            cudart.cudaGraphExecDestroy(graph)
        for ptr in [*self.dev_in.values(), self.dev_out]:
            cudart.cudaFree(ptr)
        cudart.cudaStreamDestroy(self.stream)


class _Slot:
    """Pinned host buffers for one group in flight, sized for the largest profile."""

    def __init__(self, session: "TensorRTSession"):
        cudart = session.cudart
        self._ptrs: list[int] = []
        self.host_in: dict[str, np.ndarray] = {}
        for name, dtype in session.input_dtypes.items():
            nbytes = session.max_tokens * dtype.itemsize
            self.host_in[name] = _pinned_view(self._alloc(cudart, nbytes), nbytes, dtype)
        out_bytes = session.max_results * session.num_labels * session.output_dtype.itemsize
        self.host_out = _pinned_view(self._alloc(cudart, out_bytes), out_bytes, session.output_dtype)
        self.done = cuda_check(cudart.cudaEventCreateWithFlags(cudart.cudaEventDisableTiming))
        self.pending: Optional[tuple[int, tuple[int, ...]]] = None  # (piece index, result shape)

    def _alloc(self, cudart: Any, nbytes: int) -> int:
        ptr = cuda_check(cudart.cudaMallocHost(nbytes))
        self._ptrs.append(ptr)
        return ptr

    def free(self, cudart: Any) -> None:
        for ptr in self._ptrs:
            cudart.cudaFreeHost(ptr)
        cudart.cudaEventDestroy(self.done)


class TensorRTSession(InferenceSession):
    """Runs a TensorRT plan built by ``builder.build_engine`` (see ``loader`` for the loader
    that finds or builds one through the engine cache).

    Args:
        plan_path: the plan; its metadata file (``PLAN.json``) must sit beside it.
        onnx_sha256: the model the plan must have been built from, if known.
        cuda_graphs: replay CUDA graphs for shapes that recur.
        allow_retuned: accept a plan built on another GPU of the same compute capability.
        trt_module: ``tensorrt``, ``tensorrt_rtx`` ... (default: the first importable).
    """

    name = "tensorrt"

    def __init__(self, plan_path: Path, *, onnx_sha256: Optional[str] = None, cuda_graphs: bool = True,
                 allow_retuned: bool = True, trt_module: Optional[str] = None):
        self.trt = trt = import_tensorrt(trt_module)
        self.cudart = cudart_module()
        self.plan_path = Path(plan_path)
        self.meta = PlanMetadata.read(self.plan_path)
        here = runtime_info(trt)
        problems = mismatches(self.meta, here, onnx_sha256)
        if problems and not (allow_retuned and only_tuning_differs(problems)):
            raise EngineMismatch(f"plan {str(self.plan_path)!r} cannot run here: " + "; ".join(problems))
        for p in problems:
            log.warning("plan %s: %s", self.plan_path, p)
        self._logger = _CapturingLogger(trt)
        self.runtime: tensorrt.Runtime = trt.Runtime(self._logger.logger)
        self.engine: tensorrt.ICudaEngine = self.runtime.deserialize_cuda_engine(self.plan_path.read_bytes())
        if self.engine is None:
            detail = "; ".join(self._logger.messages[-3:]) or "no reason given"
            raise EngineMismatch(f"TensorRT ({here.trt_module} {here.trt_version}) refused to load plan "
                                 f"{str(self.plan_path)!r} on {here.gpu_name} (compute capability "
                                 f"{here.compute_capability}): {detail}")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(outputs) != 1:
            raise EngineMismatch(f"plan {str(self.plan_path)!r} has outputs {outputs}; expected one (logits)")
        # A packed plan (several rows a sequence, tokenization.PackedBatch) takes segment and position ids
        # and returns one result per slot: [sequences, seq, labels].
        self.packed = "segment_ids" in inputs
        order = PACKED_INPUTS if self.packed else PADDED_INPUTS
        self.input_names = [n for n in order if n in inputs]
        self.output_name = outputs[0]
        self.input_dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in self.input_names}
        self.output_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.output_name)))
        self.num_labels = int(self.engine.get_tensor_shape(self.output_name)[-1])
        self.profiles: list[Profile] = self.meta.profile_objects()
        self.max_tokens = max(p.max_batch * p.max_seq for p in self.profiles)
        # Results a group may return at most: one a row, or one a slot of every packed sequence.
        self.max_results = self.max_tokens if self.packed else max(p.max_batch for p in self.profiles)
        self.max_rows = max(p.max_batch for p in self.profiles)
        self.max_seq = max(p.max_seq for p in self.profiles)
        self.token_budget = GROUP_TOKENS
        self.max_group_rows = min(GROUP_ROWS, self.max_rows)
        self.cuda_graphs = cuda_graphs
        self.graph_after = GRAPH_AFTER
        self._lanes: list[Optional[_Lane]] = [None] * len(self.profiles)  # made on first use
        self._lanes_lock = threading.Lock()
        self._local = threading.local()
        self._slots: list[_Slot] = []
        self._slots_lock = threading.Lock()

    # -- the InferenceSession contract ----------------------------------------------------------
    def run_many(self, groups: Iterable[Feeds]) -> list[np.ndarray]:
        """Queue each group as it is read (the iterable is consumed once: a generator may tokenize
        the next group meanwhile), alternating this thread's two slots; one array per group."""
        slots = self._thread_slots()
        pieces: list[Optional[np.ndarray]] = []
        per_group: list[int] = []
        for feeds in groups:
            parts = self._fit_profiles(feeds)
            per_group.append(len(parts))
            for part in parts:
                slot = slots[len(pieces) % 2]
                if slot.pending is not None:
                    self._collect(slot, pieces)
                pieces.append(None)
                self._enqueue(slot, part, len(pieces) - 1)
        for slot in slots:
            if slot.pending is not None:
                self._collect(slot, pieces)
        out, k = [], 0
        for n in per_group:
            done = [p for p in pieces[k:k + n] if p is not None]
            out.append(done[0] if n == 1 else np.concatenate(done, axis=0))
            k += n
        return out

    def close(self) -> None:
        cudart = self.cudart
        cudart.cudaDeviceSynchronize()
        for lane in self._lanes:
            if lane is not None:
                lane.free(cudart)
        self._lanes = [None] * len(self.profiles)
        with self._slots_lock:
            for slot in self._slots:
                slot.free(cudart)
            self._slots.clear()

    # -- internals --------------------------------------------------------------------------------
    def _thread_slots(self) -> list[_Slot]:
        slots = getattr(self._local, "slots", None)  # threading.local: absent until this thread asks
        if slots is None:
            slots = [_Slot(self), _Slot(self)]
            self._local.slots = slots
            with self._slots_lock:
                self._slots.extend(slots)
        return slots

    def _lane(self, index: int) -> _Lane:
        lane = self._lanes[index]
        if lane is None:
            with self._lanes_lock:
                lane = self._lanes[index]
                if lane is None:
                    lane = self._lanes[index] = _Lane(self, index)
        return lane

    def _fit_profiles(self, feeds: Feeds) -> list[Feeds]:
        """Split a group with more rows than any profile accepts at its length."""
        rows, seq = feeds["input_ids"].shape
        limit = max_rows_for(self.profiles, seq)
        if limit == 0:
            raise ValueError(f"plan {self.plan_path} has no profile for {seq} tokens (longest: {self.max_seq}); "
                             "lower max_seq_len or rebuild the plan for longer text")
        if rows <= limit:
            return [feeds]
        return [{n: a[i:i + limit] for n, a in feeds.items()} for i in range(0, rows, limit)]

    def _enqueue(self, slot: _Slot, feeds: Feeds, index: int) -> None:
        cudart = self.cudart
        rows, seq = feeds["input_ids"].shape
        lane = self._lane(select_profile(self.profiles, rows, seq))
        run_rows = bucket_rows(rows, lane.max_rows) if self.cuda_graphs else rows
        tokens = run_rows * seq
        for name in self.input_names:  # host side first, outside the lane's lock
            host = slot.host_in[name][:tokens].reshape(run_rows, seq)
            host[:rows] = feeds[name]
            if run_rows > rows:  # padding rows attend to one token, so they give no NaN
                host[rows:] = 0
                if name == self.input_names[1]:  # the attention mask, or the segment ids
                    host[rows:, 0] = 1
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        shape = (rows, seq, self.num_labels) if self.packed else (rows, self.num_labels)
        out_bytes = int(np.prod(shape)) * self.output_dtype.itemsize
        with lane.lock:
            for name in self.input_names:
                cuda_check(cudart.cudaMemcpyAsync(lane.dev_in[name], slot.host_in[name].ctypes.data,
                                                  tokens * self.input_dtypes[name].itemsize, h2d, lane.stream))
            self._execute(lane, run_rows, seq)
            cuda_check(cudart.cudaMemcpyAsync(slot.host_out.ctypes.data, lane.dev_out, out_bytes, d2h, lane.stream))
            cuda_check(cudart.cudaEventRecord(slot.done, lane.stream))
        slot.pending = (index, shape)

    def _execute(self, lane: _Lane, rows: int, seq: int) -> None:
        """Queue the network at (rows, seq) on the lane's stream: a graph replay once the shape has
        recurred, else ``execute_async_v3``. The caller holds the lane's lock."""
        cudart, ctx, shape = self.cudart, lane.context, (rows, seq)
        graph = lane.graphs.get(shape)
        if graph is not None:
            cuda_check(cudart.cudaGraphLaunch(graph, lane.stream))
            return
        if lane.shape != shape:
            for name in self.input_names:
                if not ctx.set_input_shape(name, shape):
                    raise RuntimeError(f"TensorRT refused shape {shape} for {name} in profile {lane.index}")
            lane.shape = shape
        if not ctx.execute_async_v3(lane.stream):
            raise RuntimeError(f"TensorRT execution failed for batch {rows} x {seq}")
        if self.cuda_graphs:
            lane.seen[shape] = lane.seen.get(shape, 0) + 1
            if lane.seen[shape] > self.graph_after:
                # Captured after normal runs at this shape, as TensorRT requires; the graph keeps
                # the lane's buffers and this shape.
                lane.graphs[shape] = self._capture(lane)
                log.debug("captured a CUDA graph for %d x %d tokens (profile %d)", rows, seq, lane.index)

    def _capture(self, lane: _Lane) -> Any:
        cudart = self.cudart
        mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        cuda_check(cudart.cudaStreamBeginCapture(lane.stream, mode))
        ok = lane.context.execute_async_v3(lane.stream)
        graph = cuda_check(cudart.cudaStreamEndCapture(lane.stream))
        if not ok:
            cudart.cudaGraphDestroy(graph)
            raise RuntimeError("TensorRT execution failed while capturing a CUDA graph")
        executable = cuda_check(cudart.cudaGraphInstantiate(graph, 0))
        cudart.cudaGraphDestroy(graph)
        return executable

    def _collect(self, slot: _Slot, pieces: list) -> None:
        assert slot.pending is not None
        index, shape = slot.pending
        cuda_check(self.cudart.cudaEventSynchronize(slot.done))
        pieces[index] = slot.host_out[:int(np.prod(shape))].reshape(shape).astype(np.float32, copy=True)
        slot.pending = None
