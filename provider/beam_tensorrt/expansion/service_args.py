"""Command-line options of `beam-tensorrt serve` (kept apart so `--help` stays fast)."""
from __future__ import annotations

import argparse

DESCRIPTION = """Serve ClassifyText over Beam's expansion API (gRPC).

Environments attached to expanded transforms (--environment):
  worker-pool  (default) a Python worker pool served by this process on the same port; the
               runner asks it for SDK workers. For local runs: FnApiRunner, Prism, Flink embedded.
  embedded     run in the client's own Python process (needs beam-tensorrt installed there).
  external     a worker pool elsewhere: --environment-config HOST:PORT.
  process      --environment-config '{"command": "/path/to/boot"}' on each runner worker.
  docker       --environment-config IMAGE: an SDK container with beam-tensorrt (see docker/).
  loopback     the submitting Python process serves workers (Python clients only).
"""


ENVIRONMENTS = ("worker-pool", "embedded", "external", "process", "docker", "loopback")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=8097, help="port (default: 8097; 0 picks a free one)")
    p.add_argument("--environment", default="worker-pool", choices=ENVIRONMENTS)
    p.add_argument("--environment-config", default=None)
    p.add_argument("--grace", type=float, default=10.0, help="seconds to drain in-flight calls on SIGTERM")
    p.add_argument("--max-expansion-seconds", type=float, default=120.0,
                   help="server-side deadline of one expansion (default 120; a shorter client deadline wins)")
    p.add_argument("--tls-cert", default=None, help="PEM server certificate: serve TLS (needs --tls-key)")
    p.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    p.add_argument("--tls-client-ca", default=None,
                   help="PEM CA bundle: require client certificates signed by it (mutual TLS)")


def run(args) -> int:
    import logging

    from .service import TlsConfig, serve

    if bool(args.tls_cert) != bool(args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    if args.tls_client_ca and not args.tls_cert:
        raise ValueError("--tls-client-ca needs --tls-cert and --tls-key")
    tls = TlsConfig(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    logging.getLogger("beam_tensorrt").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return serve(args.host, args.port, args.environment, args.environment_config, args.grace, tls,
                 args.max_expansion_seconds)
