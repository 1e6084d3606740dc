"""TensorRT runtime: a plan checked against its metadata, one execution context per worker thread,
pinned host buffers, asynchronous copies, ``execute_async_v3`` on a stream, two buffer slots so
host preparation of batch N+1 overlaps GPU work on batch N, optional CUDA graphs per shape.

Unlike Beam's stock ``TensorRTEngineHandlerNumPy`` (one input, bound at the engine's static
shape) it binds every input by name (``input_ids``, ``attention_mask``, ``token_type_ids``) at
the batch's own shape, choosing the narrowest optimization profile.
"""
from __future__ import annotations

import ctypes
import logging
import threading
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

import numpy as np

from .loader import cuda_check, import_tensorrt, runtime_info
from .metadata import EngineMismatch, PlanMetadata, mismatches, only_tuning_differs
from .profiles import Profile, select_profile

if TYPE_CHECKING:  # checked against tensorrt-stubs; at run time the module is found lazily
    import tensorrt

log = logging.getLogger(__name__)


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


class _Slot:
    """Pinned host and device buffers for one batch in flight, sized for the largest profile."""

    def __init__(self, cudart: Any, inputs: Mapping[str, Any], max_tokens: int, output_dtype: Any,
                 max_output: int):
        self.cudart = cudart
        self.host_in: dict[str, np.ndarray] = {}
        self.dev_in: dict[str, int] = {}
        self._host_ptrs: list[int] = []
        self._dev_ptrs: list[int] = []
        for name, dtype in inputs.items():
            nbytes = max_tokens * np.dtype(dtype).itemsize
            host = cuda_check(cudart.cudaMallocHost(nbytes))
            dev = cuda_check(cudart.cudaMalloc(nbytes))
            self._host_ptrs.append(host)
            self._dev_ptrs.append(dev)
            self.host_in[name] = _pinned_view(host, nbytes, dtype)
            self.dev_in[name] = dev
        out_bytes = max_output * np.dtype(output_dtype).itemsize
        host_out = cuda_check(cudart.cudaMallocHost(out_bytes))
        self.dev_out = cuda_check(cudart.cudaMalloc(out_bytes))
        self._host_ptrs.append(host_out)
        self._dev_ptrs.append(self.dev_out)
        self.host_out = _pinned_view(host_out, out_bytes, output_dtype)
        self.done = cuda_check(cudart.cudaEventCreate())
        self.pending: Optional[tuple[int, int, int]] = None  # (result index, rows, labels)

    def free(self) -> None:
        for p in self._dev_ptrs:
            self.cudart.cudaFree(p)
        for p in self._host_ptrs:
            self.cudart.cudaFreeHost(p)
        self.cudart.cudaEventDestroy(self.done)


class _ThreadState:
    def __init__(self, session: "TensorRTSession"):
        from cuda.bindings import runtime as cudart  # type: ignore[import-not-found]

        self.cudart = cudart
        self.context: tensorrt.IExecutionContext = session.engine.create_execution_context()
        if self.context is None:
            raise RuntimeError("TensorRT could not create an execution context (out of GPU memory?)")
        self.stream = cuda_check(cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking))
        self.slots = [_Slot(cudart, session.input_dtypes, session.max_tokens, session.output_dtype,
                            session.max_rows * session.num_labels) for _ in range(2)]
        self.profile: Optional[int] = None
        self.graphs: dict[tuple[int, int, int, int], Any] = {}


class TensorRTSession:
    name = "tensorrt"
    thread_safe = True  # one execution context, stream and buffer pair per calling thread

    def __init__(self, plan_path: Path, *, onnx_sha256: Optional[str] = None, cuda_graphs: bool = True,
                 allow_retuned: bool = True, trt_module: Optional[str] = None):
        self.trt = trt = import_tensorrt(trt_module)
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
        self.input_names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in inputs]
        self.output_name = outputs[0]
        self.input_dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in self.input_names}
        self.output_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.output_name)))
        self.profiles: list[Profile] = self.meta.profile_objects()
        self.max_tokens = max(p.max_batch * p.max_seq for p in self.profiles)
        self.max_rows = max(p.max_batch for p in self.profiles)
        self.num_labels = int(self.engine.get_tensor_shape(self.output_name)[-1])
        self.token_budget = max(p.opt_batch * p.opt_seq for p in self.profiles)
        self.cuda_graphs = cuda_graphs
        self._local = threading.local()
        self._states: list[_ThreadState] = []
        self._states_lock = threading.Lock()

    def _state(self) -> _ThreadState:
        state = getattr(self._local, "state", None)
        if state is None:
            state = _ThreadState(self)
            self._local.state = state
            with self._states_lock:
                self._states.append(state)
        return state

    # -- the InferenceSession contract ----------------------------------------------------------
    def run(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.run_many([feeds])[0]

    def run_many(self, batches: Sequence[Mapping[str, np.ndarray]]) -> list[np.ndarray]:
        """Run several batches, alternating two buffer slots: while the GPU works on one batch the
        host copies the next into the other slot's pinned memory."""
        work = [piece for feeds in batches for piece in self._fit_profiles(feeds)]
        results: list[Optional[np.ndarray]] = [None] * len(work)
        st = self._state()
        for i, feeds in enumerate(work):
            slot = st.slots[i % 2]
            if slot.pending is not None:
                self._collect(st, slot, results)
            self._enqueue(st, slot, feeds, i)
        for slot in st.slots:
            if slot.pending is not None:
                self._collect(st, slot, results)
        # Pieces of one input batch were appended in order: stitch them back.
        out, k = [], 0
        for feeds in batches:
            n = len(self._fit_profiles(feeds))
            out.append(np.concatenate([r for r in results[k:k + n] if r is not None], axis=0))
            k += n
        return out

    def close(self) -> None:
        with self._states_lock:
            for st in self._states:
                for slot in st.slots:
                    slot.free()
                st.cudart.cudaStreamDestroy(st.stream)
            self._states.clear()

    # -- internals --------------------------------------------------------------------------------
    def _fit_profiles(self, feeds: Mapping[str, np.ndarray]) -> list[Mapping[str, np.ndarray]]:
        """Split a batch whose row count exceeds what the profiles accept at its length."""
        rows, seq = feeds["input_ids"].shape
        limit = max((p.max_batch for p in self.profiles if p.min_seq <= seq <= p.max_seq), default=0)
        if limit == 0:
            raise ValueError(f"plan {self.plan_path} has no profile for {seq} tokens "
                             f"(longest: {max(p.max_seq for p in self.profiles)}); lower max_seq_len")
        if rows <= limit:
            return [feeds]
        return [{n: a[i:i + limit] for n, a in feeds.items()} for i in range(0, rows, limit)]

    def _enqueue(self, st: _ThreadState, slot: _Slot, feeds: Mapping[str, np.ndarray], index: int) -> None:
        cudart, ctx = st.cudart, st.context
        rows, seq = feeds["input_ids"].shape
        tokens = rows * seq
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name in self.input_names:
            dtype = self.input_dtypes[name]
            slot.host_in[name][:tokens] = np.asarray(feeds[name], dtype=dtype).ravel()
            cuda_check(cudart.cudaMemcpyAsync(slot.dev_in[name], slot.host_in[name].ctypes.data,
                                              tokens * dtype.itemsize, h2d, st.stream))
        profile = select_profile(self.profiles, rows, seq)
        if st.profile != profile:
            if not ctx.set_optimization_profile_async(profile, st.stream):
                raise RuntimeError(f"TensorRT refused optimization profile {profile}")
            st.profile = profile
        for name in self.input_names:
            if not ctx.set_input_shape(name, (rows, seq)):
                raise RuntimeError(f"TensorRT refused shape {(rows, seq)} for {name} in profile {profile}")
            ctx.set_tensor_address(name, slot.dev_in[name])
        ctx.set_tensor_address(self.output_name, slot.dev_out)
        key = (id(slot), profile, rows, seq)
        graph = st.graphs.get(key) if self.cuda_graphs else None
        if graph is not None:
            cuda_check(cudart.cudaGraphLaunch(graph, st.stream))
        else:
            if not ctx.execute_async_v3(st.stream):
                raise RuntimeError(f"TensorRT execution failed for batch {rows} x {seq}")
            if self.cuda_graphs:
                # Captured after one normal run at this shape, as TensorRT requires.
                st.graphs[key] = self._capture(st)
        labels = self.num_labels
        cuda_check(cudart.cudaMemcpyAsync(slot.host_out.ctypes.data, slot.dev_out,
                                          rows * labels * self.output_dtype.itemsize, d2h, st.stream))
        cuda_check(cudart.cudaEventRecord(slot.done, st.stream))
        slot.pending = (index, rows, labels)

    def _capture(self, st: _ThreadState) -> Any:
        cudart = st.cudart
        cuda_check(cudart.cudaStreamBeginCapture(st.stream, cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal))
        st.context.execute_async_v3(st.stream)
        graph = cuda_check(cudart.cudaStreamEndCapture(st.stream))
        return cuda_check(cudart.cudaGraphInstantiate(graph, 0))

    def _collect(self, st: _ThreadState, slot: _Slot, results: list) -> None:
        assert slot.pending is not None
        index, rows, labels = slot.pending
        cuda_check(st.cudart.cudaEventSynchronize(slot.done))
        results[index] = slot.host_out[:rows * labels].reshape(rows, labels).astype(np.float32, copy=True)
        slot.pending = None
