"""``beam-tensorrt serve``: a Beam expansion service that expands ClassifyText and nothing else.

Unlike Beam's stock Python expansion service it
- serves an explicit allow-list (our schema transform, and our public transforms by fully
  qualified name), never arbitrary callables or pickled code from callers;
- implements ``DiscoverSchemaTransform`` (Beam YAML's ``type: remote`` and Java need it);
- binds loopback by default, answers gRPC health checks, drains on SIGTERM/SIGINT, and logs
  what it expanded for whom;
- attaches a configurable environment to what it expands, by default an in-process Python
  worker pool served on the same port, so a local run needs nothing else.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from typing import Optional

import grpc
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability.api import (beam_artifact_api_pb2_grpc, beam_expansion_api_pb2,
                                         beam_expansion_api_pb2_grpc, beam_fn_api_pb2_grpc)
from apache_beam.runners.portability import artifact_service
from apache_beam.runners.portability.expansion_service import ExpansionServiceServicer
from apache_beam.transforms.fully_qualified_named_transform import FullyQualifiedNamedTransform

from . import transforms
from .environments import CLIENT_ENVIRONMENT_OPTIONS, environment_options
from .policy import FQN_FILTER_GLOB, NotAllowed, check_allowed
from .schema import IDENTIFIER, schema_transform_config
from ..ports import bind
from ..worker_pool.servicer import CheckedWorkerPoolServicer

log = logging.getLogger("beam_tensorrt.serve")
MAX_MESSAGE_BYTES = 32 * 1024 * 1024


def without_client_environment(request):
    """The request with the client's own environment options removed (see environments.py)."""
    names = {f"beam:option:{name}:v1" for name in CLIENT_ENVIRONMENT_OPTIONS}
    present = [key for key in request.pipeline_options.fields if key in names]
    if not present:
        return request
    cleaned = type(request)()
    cleaned.CopyFrom(request)
    for key in present:
        del cleaned.pipeline_options.fields[key]
    return cleaned

def _summary(error: str) -> str:
    """The last line of a traceback, i.e. the exception, for logs and the head of error replies."""
    lines = [ln for ln in error.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else error


class ClassifyTextExpansionServicer(ExpansionServiceServicer):
    def __init__(self, options: PipelineOptions, max_expansion_seconds: float = 120.0):
        super().__init__(options)
        self.max_expansion_seconds = max_expansion_seconds
        self._expanders = futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="expand")
        transforms.register()
        self._inflight = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    def _enter(self) -> None:
        with self._lock:
            self._inflight += 1

    def _exit(self) -> None:
        with self._lock:
            self._inflight -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._lock:
            return self._idle.wait_for(lambda: self._inflight == 0, timeout)

    def Expand(self, request, context=None):
        peer = context.peer() if context is not None else "in-process"
        self._enter()
        start = time.monotonic()
        try:
            try:
                name = check_allowed(request.transform.spec)
            except NotAllowed as e:
                log.warning("refused expansion for %s: %s", peer, e)
                return beam_expansion_api_pb2.ExpansionResponse(error=f"refused: {e}")
            # A server-side deadline, whatever the client asked for: an expansion that hangs (a model
            # path on a stalled filesystem, say) must not hold the caller or a handler thread forever.
            limit = self.max_expansion_seconds
            if context is not None and context.time_remaining() is not None:
                limit = min(limit, max(0.0, context.time_remaining()))
            job = self._expanders.submit(super().Expand, without_client_environment(request), context)
            try:
                response = job.result(timeout=limit)
            except futures.TimeoutError:
                log.warning("expansion of %s for %s exceeded %.1f s", name, peer, limit)
                return beam_expansion_api_pb2.ExpansionResponse(
                    error=f"expansion of {name} exceeded its deadline of {limit:.1f} s")
            ms = (time.monotonic() - start) * 1000
            if response.error:
                summary = _summary(response.error)
                log.warning("expansion of %s (%s) for %s failed in %.0f ms: %s",
                            name, request.transform.unique_name, peer, ms, summary)
                # The reason first: clients print the head of this message.
                response.error = f"{summary}\n\n{response.error}"
            else:
                log.info("expanded %s (%s) for %s in %.0f ms", name, request.transform.unique_name, peer, ms)
            return response
        finally:
            self._exit()

    def DiscoverSchemaTransform(self, request, context=None):
        peer = context.peer() if context is not None else "in-process"
        log.info("schema transform discovery for %s", peer)
        return beam_expansion_api_pb2.DiscoverSchemaTransformResponse(
            schema_transform_configs={IDENTIFIER: schema_transform_config()})


@dataclass
class TlsConfig:
    cert: str  # PEM server certificate (chain)
    key: str  # PEM private key
    client_ca: Optional[str] = None  # PEM CA bundle: when set, clients must present a certificate it signed

    def credentials(self) -> grpc.ServerCredentials:
        def read(path: str) -> bytes:
            with open(path, "rb") as f:
                return f.read()

        return grpc.ssl_server_credentials(
            [(read(self.key), read(self.cert))],
            root_certificates=read(self.client_ca) if self.client_ca else None,
            require_client_auth=bool(self.client_ca))


@dataclass
class ExpansionServer:
    host: str = "127.0.0.1"
    port: int = 8097
    environment: str = "worker-pool"
    environment_config: Optional[str] = None
    max_workers: int = 16
    tls: Optional[TlsConfig] = None
    max_expansion_seconds: float = 120.0
    # The embedded worker pool (environment "worker-pool"); None: workers are threads of this process.
    pool: Optional[CheckedWorkerPoolServicer] = None

    def start(self) -> int:
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc

        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="expansion"),
            options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.so_reuseport", 0)])
        self.port = bind(self._server, self.host, self.port, self.tls.credentials() if self.tls else None)
        own = f"{self.host}:{self.port}"
        self._pool_server = None
        if self.environment == "worker-pool":
            pool = self.pool or CheckedWorkerPoolServicer()
            if self.tls is None:
                beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(pool, self._server)
            else:
                # Runners reach worker pools without TLS: serve it apart, on loopback only.
                self._pool_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
                beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(pool, self._pool_server)
                own = f"127.0.0.1:{bind(self._pool_server, '127.0.0.1', 0)}"
                self._pool_server.start()
        self.servicer = ClassifyTextExpansionServicer(
            environment_options(self.environment, self.environment_config, own), self.max_expansion_seconds)
        beam_expansion_api_pb2_grpc.add_ExpansionServiceServicer_to_server(self.servicer, self._server)
        beam_artifact_api_pb2_grpc.add_ArtifactRetrievalServiceServicer_to_server(
            artifact_service.ArtifactRetrievalService(artifact_service.BeamFilesystemHandler(None).file_reader),
            self._server)
        self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        # Filtering by name is enforced before expansion (check_allowed); Beam's glob is a second fence.
        self._fences = contextlib.ExitStack()
        self._fences.enter_context(FullyQualifiedNamedTransform.with_filter(FQN_FILTER_GLOB))
        self._server.start()
        for service in ("", "org.apache.beam.model.expansion.v1.ExpansionService"):
            self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        log.info("beam-tensorrt expansion service on %s:%d%s (environment: %s %s)", self.host, self.port,
                 "" if self.tls is None else (" with mutual TLS" if self.tls.client_ca else " with TLS"),
                 self.environment, self.environment_config or (own if self.environment == "worker-pool" else ""))
        return self.port

    def stop(self, grace: float = 10.0) -> None:
        log.info("shutting down: draining in-flight expansions (up to %.0f s)", grace)
        self._health.enter_graceful_shutdown()
        drained = self.servicer.wait_idle(grace)
        self._server.stop(grace=None if drained else 1.0).wait()
        if self._pool_server is not None:
            self._pool_server.stop(grace=None)
        if self.pool is not None:
            self.pool.close()
        self._fences.close()
        log.info("stopped%s", "" if drained else " (some expansions were cut off)")

    def wait(self) -> None:
        self._server.wait_for_termination()


def serve(host: str, port: int, environment: str, environment_config: Optional[str], grace: float,
          tls: Optional[TlsConfig] = None, max_expansion_seconds: float = 120.0,
          pool: Optional[CheckedWorkerPoolServicer] = None) -> int:
    server = ExpansionServer(host, port, environment, environment_config, tls=tls,
                             max_expansion_seconds=max_expansion_seconds, pool=pool)
    stopping = threading.Event()

    def on_signal(signum, _frame):
        log.info("received %s", signal.Signals(signum).name)
        stopping.set()

    # Installed before the port opens, so a signal right after "listening" is never the default kill.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    bound = server.start()
    print(f"beam-tensorrt expansion service listening on {host}:{bound}", flush=True)
    while not stopping.wait(0.5):
        pass
    server.stop(grace)
    return 0
