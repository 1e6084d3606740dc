"""A `beam-tensorrt worker-pool` subprocess for the benchmarks, with its workers booted before a job."""
from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def worker_pool(workers: int, warm_cuda: bool = False, preload: str = "") -> Iterator[str]:
    """Start `beam-tensorrt worker-pool --prestart N` and yield its address (HOST:PORT for
    ``--environment_type=EXTERNAL``) once its N workers are ready; stop it afterwards.
    ``preload``: ClassifyText's config as JSON, loaded by each worker before the job."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "pool.log"
        cmd = [sys.executable, "-m", "beam_tensorrt.cli", "worker-pool", "--port", "0", "--prestart", str(workers)]
        cmd += (["--warm-cuda"] if warm_cuda else []) + (["--preload", preload] if preload else [])
        pool = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
        try:
            assert pool.stdout is not None
            port = re.search(r"listening on [\d.]+:(\d+)", pool.stdout.readline())
            assert port, log.read_text()[-3000:]
            deadline = time.monotonic() + 300
            while len(re.findall(r"SDK worker process \d+ ready", log.read_text())) < workers:
                assert pool.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.2)
            yield f"127.0.0.1:{port.group(1)}"
        finally:
            pool.send_signal(signal.SIGTERM)
            pool.wait(timeout=60)
