"""What the scripts that run local Java services share: free ports, whether a port listens, and a
process kept by its pid file (found, signalled, waited for)."""
from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import Optional


def free_port() -> int:
    """A port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def running_pid(pid_file: Path) -> Optional[int]:
    """The pid in ``pid_file`` if that process runs; otherwise None (and a stale file is removed)."""
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return None
    return pid


def end(pid_file: Path, sig: int = signal.SIGTERM, wait: float = 20.0) -> None:
    """Send ``sig`` to the process of ``pid_file``, SIGKILL it if it still runs after ``wait`` seconds,
    and remove the file. Nothing to do when it does not run."""
    pid = running_pid(pid_file)
    if pid is None:
        return
    os.kill(pid, sig)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)  # reap it when it is this process's child
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, from /proc (Linux)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while listed
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found
