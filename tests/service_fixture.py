"""A real `beam-tensorrt serve` subprocess on an ephemeral 127.0.0.1 port."""
from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass


@dataclass
class RunningService:
    proc: subprocess.Popen
    port: int
    log_path: str

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


def start_service(tmp_path, *extra_args: str, timeout: float = 60) -> RunningService:
    log_path = str(tmp_path / "serve.log")
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "beam_tensorrt.cli", "serve", "--port", "0", *extra_args],
                            stdout=subprocess.PIPE, stderr=log, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            m = re.search(r"listening on [\d.]+:(\d+)", line)
            if m:
                return RunningService(proc, int(m.group(1)), log_path)
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"service did not start: {open(log_path).read()[-2000:]}")
