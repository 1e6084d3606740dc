"""Stand-ins for ``tensorrt`` and ``cuda.bindings.runtime`` so the TensorRT runner can be held to the
backend contract on a machine without a GPU.

They model what the runner must get right, not just the call names:
- CUDA work is asynchronous: copies, executions and event records queue on their stream and run
  only when the host waits (an event, a stream, the device). A host buffer overwritten before its
  queued copy ran, or a result read before its event, gives wrong numbers here as on a GPU.
- A CUDA graph replays what was captured: the addresses and shapes bound at capture time.
- TensorRT's rules: an input shape must lie within the context's optimization profile, and
  execution contexts of one engine must not share a profile.
- "Device" memory is host memory (ctypes buffers), so the engine can run a real ONNX Runtime
  session on it: results are the model's real logits.

A "plan" is a JSON file naming the ONNX file and the profiles it was "built" for.
"""
from __future__ import annotations

import ctypes
import itertools
import json
import sys
import threading
import types
from collections import deque
from pathlib import Path

import numpy as np

TRT_VERSION = "10.6.0.fake"
GPU = ("Fake GPU 80GB", 9, 0)


class FakeCudaRuntime(types.ModuleType):
    """The subset of ``cuda.bindings.runtime`` the runner uses; every call returns (err, *values)."""

    cudaStreamNonBlocking = 1
    cudaEventDisableTiming = 2

    class cudaMemcpyKind:
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    class cudaStreamCaptureMode:
        cudaStreamCaptureModeThreadLocal = 1

    def __init__(self) -> None:
        super().__init__("cuda.bindings.runtime")
        self._lock = threading.RLock()
        self._memory: dict[int, ctypes.Array] = {}
        self._ids = itertools.count(1)
        self._queues: dict[int, deque] = {}
        self._runners: dict[int, threading.Lock] = {}  # one op of a stream at a time, in order
        self._capturing: dict[int, list] = {}
        self._events: dict[int, dict] = {}  # event -> {"done": bool}
        self._graphs: dict[int, list] = {}
        self.graph_launches = 0
        self.executions = 0

    # -- memory -------------------------------------------------------------------------------
    def _alloc(self, nbytes: int):
        buf = ctypes.create_string_buffer(max(1, nbytes))
        with self._lock:
            self._memory[ctypes.addressof(buf)] = buf
        return 0, ctypes.addressof(buf)

    def cudaMallocHost(self, nbytes):
        return self._alloc(nbytes)

    def cudaMalloc(self, nbytes):
        return self._alloc(nbytes)

    def _free(self, ptr):
        with self._lock:
            self._memory.pop(ptr, None)
        return (0,)

    cudaFree = cudaFreeHost = _free

    def cudaMemcpyAsync(self, dst, src, nbytes, kind, stream):
        return self._enqueue(stream, lambda: ctypes.memmove(dst, src, nbytes))

    # -- streams, events, graphs ----------------------------------------------------------------
    def cudaStreamCreateWithFlags(self, flags):
        stream = next(self._ids)
        with self._lock:
            self._queues[stream] = deque()
            self._runners[stream] = threading.Lock()
        return 0, stream

    def cudaStreamDestroy(self, stream):
        self._flush(stream)
        return (0,)

    def cudaEventCreateWithFlags(self, flags):
        event = next(self._ids)
        with self._lock:
            self._events[event] = {"done": True, "stream": None}
        return 0, event

    def cudaEventDestroy(self, event):
        return (0,)

    def cudaEventRecord(self, event, stream):
        state = self._events[event]
        with self._lock:
            state["done"], state["stream"] = False, stream

        def mark():
            state["done"] = True

        return self._enqueue(stream, mark)

    def cudaEventSynchronize(self, event):
        state = self._events[event]
        if state["stream"] is not None:
            self._flush(state["stream"], until=lambda: state["done"])
        assert state["done"], "event never completes"
        return (0,)

    def cudaDeviceSynchronize(self):
        for stream in list(self._queues):
            self._flush(stream)
        return (0,)

    def cudaStreamBeginCapture(self, stream, mode):
        with self._lock:
            self._capturing[stream] = []
        return (0,)

    def cudaStreamEndCapture(self, stream):
        with self._lock:
            ops = self._capturing.pop(stream)
        graph = next(self._ids)
        self._graphs[graph] = ops
        return 0, graph

    def cudaGraphInstantiate(self, graph, flags):
        executable = next(self._ids)
        self._graphs[executable] = list(self._graphs[graph])
        return 0, executable

    def cudaGraphLaunch(self, executable, stream):
        self.graph_launches += 1
        for op in self._graphs[executable]:
            self._enqueue(stream, op)
        return (0,)

    def cudaGraphDestroy(self, graph):
        return (0,)

    cudaGraphExecDestroy = cudaGraphDestroy

    def _enqueue(self, stream, op):
        with self._lock:
            if stream in self._capturing:
                self._capturing[stream].append(op)
            else:
                self._queues[stream].append(op)
        return (0,)

    def _flush(self, stream, until=lambda: False):
        """Run the stream's queued work in order (until ``until()`` holds)."""
        while not until():
            with self._runners[stream]:
                if until():
                    return
                with self._lock:
                    queue = self._queues.get(stream)
                    if not queue:
                        return
                    op = queue.popleft()
                op()

    # -- device queries -----------------------------------------------------------------------
    def cudaGetDeviceCount(self):
        return 0, 1

    def cudaSetDevice(self, device):
        return (0,)

    def cudaGetDeviceProperties(self, device):
        name, major, minor = GPU
        return 0, types.SimpleNamespace(name=name.encode(), major=major, minor=minor)

    def cudaGetErrorName(self, err):
        return 0, f"fakeError{int(err)}".encode()


# -- tensorrt ---------------------------------------------------------------------------------------

class _Severity:
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)


class ILogger:
    Severity = _Severity

    def __init__(self) -> None:
        pass


class TensorIOMode:
    INPUT, OUTPUT = "input", "output"


class FakeEngine:
    def __init__(self, plan: dict, cudart: FakeCudaRuntime):
        import onnxruntime as ort

        self.cudart = cudart
        self.session = ort.InferenceSession(plan["onnx"], providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.output = self.session.get_outputs()[0].name
        self.output_rank = len(self.session.get_outputs()[0].shape)
        self.labels = int(plan["labels"])
        self.profiles = plan["profiles"]  # [[min, max] per dim: ((min_b, min_s), (max_b, max_s))]
        self.held_profiles: dict[int, "FakeContext"] = {}
        self.lock = threading.Lock()

    @property
    def num_io_tensors(self) -> int:
        return len(self.inputs) + 1

    def get_tensor_name(self, i: int) -> str:
        return (self.inputs + [self.output])[i]

    def get_tensor_mode(self, name: str) -> str:
        return TensorIOMode.OUTPUT if name == self.output else TensorIOMode.INPUT

    def get_tensor_dtype(self, name: str):
        return np.dtype(np.float32) if name == self.output else np.dtype(np.int64)

    def get_tensor_shape(self, name: str):
        return (-1,) * (self.output_rank - 1) + (self.labels,) if name == self.output else (-1, -1)

    def create_execution_context(self, strategy=None) -> "FakeContext":
        return FakeContext(self)


class FakeContext:
    def __init__(self, engine: FakeEngine):
        self.engine = engine
        self.profile: int | None = None
        self.shapes: dict[str, tuple[int, int]] = {}
        self.addresses: dict[str, int] = {}

    def set_optimization_profile_async(self, index: int, stream) -> bool:
        with self.engine.lock:
            holder = self.engine.held_profiles.get(index)
            if holder is not None and holder is not self:
                return False  # TensorRT: contexts of one engine must not share a profile
            if self.profile is not None:
                self.engine.held_profiles.pop(self.profile, None)
            self.engine.held_profiles[index] = self
        self.profile = index
        return True

    def set_input_shape(self, name: str, shape) -> bool:
        (min_b, min_s), (max_b, max_s) = self.engine.profiles[self.profile or 0]
        rows, seq = shape
        if not (min_b <= rows <= max_b and min_s <= seq <= max_s):
            return False
        self.shapes[name] = (int(rows), int(seq))
        return True

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        self.addresses[name] = ptr
        return True

    def execute_async_v3(self, stream) -> bool:
        engine = self.engine
        if set(self.shapes) != set(engine.inputs) or len(set(self.shapes.values())) != 1:
            return False
        rows, seq = next(iter(self.shapes.values()))
        bound = dict(self.addresses)  # what a capture would freeze: these addresses, this shape

        def run():
            engine.cudart.executions += 1
            feeds = {}
            for name in engine.inputs:
                raw = (ctypes.c_byte * (rows * seq * 8)).from_address(bound[name])
                feeds[name] = np.frombuffer(raw, dtype=np.int64).reshape(rows, seq).copy()
            logits = np.ascontiguousarray(engine.session.run([engine.output], feeds)[0], dtype=np.float32)
            ctypes.memmove(bound[engine.output], logits.ctypes.data, logits.nbytes)

        engine.cudart._enqueue(stream, run)
        return True


def make_tensorrt_module(cudart: FakeCudaRuntime) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = TRT_VERSION
    trt.ILogger = ILogger
    trt.TensorIOMode = TensorIOMode
    trt.nptype = lambda dtype: dtype
    trt.ExecutionContextAllocationStrategy = types.SimpleNamespace(STATIC=0, ON_PROFILE_CHANGE=1, USER_MANAGED=2)

    class Builder:  # the runner never builds; present so the module looks like TensorRT
        def __init__(self, logger):
            raise NotImplementedError("the fake TensorRT cannot build plans")

    class Runtime:
        def __init__(self, logger):
            self.logger = logger

        def deserialize_cuda_engine(self, data: bytes):
            try:
                plan = json.loads(data)
            except ValueError:
                self.logger.log(_Severity.ERROR, "not a plan")
                return None
            return FakeEngine(plan, cudart)

    trt.Builder, trt.Runtime = Builder, Runtime
    return trt


def write_fake_plan(plan_path: Path, onnx_path: Path, labels: int, profiles) -> None:
    """A "plan" for ``profiles`` (``trt.profiles.Profile`` objects) over an ONNX file."""
    plan_path.write_text(json.dumps({
        "onnx": str(onnx_path), "labels": labels,
        "profiles": [[[p.min_batch, p.min_seq], [p.max_batch, p.max_seq]] for p in profiles]}))


def install(monkeypatch) -> FakeCudaRuntime:
    """Put the fakes where ``import tensorrt`` and ``from cuda.bindings import runtime`` find them."""
    cudart = FakeCudaRuntime()
    cuda = types.ModuleType("cuda")
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = cudart
    cuda.bindings = bindings
    for name, module in (("cuda", cuda), ("cuda.bindings", bindings), ("cuda.bindings.runtime", cudart),
                         ("tensorrt", make_tensorrt_module(cudart))):
        monkeypatch.setitem(sys.modules, name, module)
    return cudart
