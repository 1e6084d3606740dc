"""``beam-tensorrt serve``: the expansion service (Beam YAML `type: remote`, Java, other SDKs)."""
from __future__ import annotations

import argparse
import logging

from . import pool_flags


def add(sub) -> None:
    from ..expansion.environments import ENVIRONMENTS, describe

    p = sub.add_parser("serve", help="run the expansion service (Beam YAML `type: remote`, Java, other SDKs)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Serve ClassifyText over Beam's expansion API (gRPC).\n\n"
                                   "Environments attached to expanded transforms (--environment):\n" + describe())
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=8097, help="port (default: 8097; 0 picks a free one)")
    p.add_argument("--environment", default="worker-pool", choices=list(ENVIRONMENTS), help="(default: worker-pool)")
    p.add_argument("--environment-config", default=None, help="what --environment needs: HOST:PORT, a command, an image")
    p.add_argument("--grace", type=float, default=10.0, help="seconds to drain in-flight calls on SIGTERM (default: 10)")
    p.add_argument("--max-expansion-seconds", type=float, default=120.0,
                   help="server-side deadline of one expansion (default 120; a shorter client deadline wins)")
    p.add_argument("--tls-cert", default=None, help="PEM server certificate: serve TLS (needs --tls-key)")
    p.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    p.add_argument("--tls-client-ca", default=None,
                   help="PEM CA bundle: require client certificates signed by it (mutual TLS)")
    pool = p.add_argument_group("the embedded worker pool (--environment worker-pool)")
    pool.add_argument("--worker-processes", action=argparse.BooleanOptionalAction, default=None,
                      help="run each SDK worker as a process of its own (processes let a runner's parallel workers "
                           "use several cores, and a GPU; on a GPU host they are started ahead with CUDA unless "
                           "--prestart/--no-warm-cuda say otherwise) or, with --no-worker-processes, as a thread of "
                           "this process (default: threads; see docs/worker-pool.md before choosing processes)")
    pool_flags.add(pool, "with --worker-processes: ")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import UsageError
    from ..expansion.service import TlsConfig, serve

    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    if args.tls_client_ca and not args.tls_cert:
        raise UsageError("--tls-client-ca needs --tls-cert and --tls-key")
    tls = TlsConfig(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    logging.getLogger("beam_tensorrt").setLevel(logging.INFO)
    return serve(args.host, args.port, args.environment, args.environment_config, args.grace, tls,
                 args.max_expansion_seconds, pool=_pool(args))


def _pool(args):
    """The embedded pool's servicer when its workers are processes; None for threads (the default:
    process workers lost rows of review-length texts on an H100, exit 0, not yet understood; see
    docs/worker-pool.md)."""
    from ..errors import UsageError

    process_only = pool_flags.given(args)
    if not args.worker_processes:
        if process_only:
            raise UsageError(f"{', '.join(process_only)} need --worker-processes (thread workers share this process)")
        return None
    if args.environment != "worker-pool":
        raise UsageError(f"--worker-processes is for the embedded pool (--environment worker-pool), "
                         f"not --environment {args.environment}; start `beam-tensorrt worker-pool` beside the runner")
    from ..worker_pool.servicer import CheckedWorkerPoolServicer

    gpus = pool_flags.gpus(args)
    return CheckedWorkerPoolServicer(use_process=True, prestart=pool_flags.prestart(args, len(gpus)),
                                     warm_cuda=pool_flags.warm_cuda(args), preload=args.preload or "", gpus=gpus)
