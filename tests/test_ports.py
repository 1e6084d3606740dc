"""Binding a server's port: a port in use is one sentence a user can act on."""
import socket

import grpc
import pytest

from beam_tensorrt.ports import bind


def test_a_port_in_use_names_it_and_the_way_out():
    from concurrent import futures

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}: the port is in use.*--port 0"):
            bind(server, "127.0.0.1", port)
    assert bind(server, "127.0.0.1", 0) > 0  # any free port
    server.stop(None)
