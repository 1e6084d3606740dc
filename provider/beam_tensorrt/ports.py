"""Binding a gRPC server's port, with a mistake a user can act on instead of gRPC's traceback."""
from __future__ import annotations

import socket
from typing import Any, Optional


def _free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be bound now (checked with a plain socket first: gRPC's own failure
    comes with a line of its C core's log that a user cannot act on)."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC does: TIME_WAIT is free
        try:
            probe.bind(address)
        except OSError:
            return False
    return True


def bind(server: Any, host: str, port: int, credentials: Optional[Any] = None) -> int:
    """Add ``host:port`` to ``server`` (TLS with ``credentials``); the port bound (``port`` 0: any free
    one). A port that cannot be had is an ``OSError`` naming it and the way out."""
    address = f"{host}:{port}"
    if port and not _free(host, port):
        raise OSError(f"cannot listen on {address}: the port is in use, or {host} is not an address of this "
                      "machine; choose another --port, or --port 0 for any free one")
    try:
        bound = (server.add_secure_port(address, credentials) if credentials is not None
                 else server.add_insecure_port(address))
    except RuntimeError:  # grpcio >= 1.60 raises where older ones returned 0
        bound = 0
    if bound == 0:
        raise OSError(f"cannot listen on {address}: the port is in use, or {host} is not an address of this "
                      "machine; choose another --port, or --port 0 for any free one")
    return bound


def free_port(host: str = "127.0.0.1") -> int:
    """A port of ``host`` nobody listens on now (for a child process told its port up front)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
