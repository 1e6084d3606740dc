"""Spreading worker processes over a host's GPUs, with faked devices: which GPUs are visible, what
``--gpus`` chooses, the round robin, and a real worker pool whose worker processes each get one GPU
in ``CUDA_VISIBLE_DEVICES`` (read back from /proc)."""
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from beam_tensorrt.gpus import GpuSpreader, select as select_gpus, visible_gpus
from scripts.local_services import child_pids


def test_visible_gpus_respects_cuda_visible_devices(monkeypatch):
    monkeypatch.setattr("beam_tensorrt.gpus.gpu_count", lambda: 4)
    assert visible_gpus({}) == ["0", "1", "2", "3"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}) == ["2", "3"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "GPU-8a1b, 1"}) == ["GPU-8a1b", "1"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,-1,2"}) == ["0"]  # CUDA stops at an invalid entry
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []


def test_gpus_flag_chooses_among_the_visible_ones():
    visible = ["4", "5", "6"]
    assert select_gpus("all", visible) == visible
    assert select_gpus("none", visible) == []
    assert select_gpus("0,2", visible) == ["4", "6"]
    assert select_gpus("2, 2,0", visible) == ["6", "4"]
    with pytest.raises(ValueError, match=r"GPU 3 is not visible to this process: 3 GPU\(s\) visible \(4, 5, 6\)"):
        select_gpus("0,3", visible)
    with pytest.raises(ValueError, match="GPU 0 is not visible to this process: no GPU visible"):
        select_gpus("0", [])
    with pytest.raises(ValueError, match="'cuda:1' is not 'all', 'none' or GPU positions"):
        select_gpus("cuda:1", visible)


def test_spreader_goes_round_robin_and_refills_the_gpu_a_worker_left():
    spreader = GpuSpreader(["0", "1", "2"])
    assert [spreader.take() for _ in range(7)] == ["0", "1", "2", "0", "1", "2", "0"]
    spreader.release("1")
    assert spreader.take() == "1"
    assert spreader.live() == {"0": 3, "1": 2, "2": 2}
    assert GpuSpreader().take() is None and GpuSpreader.worker_env(None) is None
    assert GpuSpreader.worker_env("3", {"PATH": "/bin"}) == {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "3"}


def test_default_workers_grow_with_the_gpus(monkeypatch):
    from beam_tensorrt.gpus import default_workers

    monkeypatch.setattr("os.cpu_count", lambda: 128)
    assert [default_workers("torch", n) for n in (0, 1, 2, 8)] == [8, 8, 16, 64]
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert default_workers("torch", 4) == 8  # one per two cores caps it
    assert default_workers("onnxruntime", 4) == 1


def _visible_devices(pid: int) -> str | None:
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return next((e.split(b"=", 1)[1].decode() for e in env if e.startswith(b"CUDA_VISIBLE_DEVICES=")), None)


def test_worker_pool_gives_each_worker_process_one_of_the_chosen_gpus(tmp_path):
    """`beam-tensorrt worker-pool --gpus 0,2 --prestart 4` under CUDA_VISIBLE_DEVICES=5,6,7: the four
    worker processes see GPUs 5, 7, 5, 7, one each."""
    import os

    env = dict(os.environ, CUDA_VISIBLE_DEVICES="5,6,7")
    proc = subprocess.Popen([sys.executable, "-m", "beam_tensorrt.cli", "worker-pool", "--port", "0", "--prestart", "4",
                             "--gpus", "0,2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        line = proc.stdout.readline() if ready else ""
        assert re.search(r"listening on 127.0.0.1:\d+ .*4 started ahead; over GPUs 5, 7", line), line
        deadline = time.monotonic() + 30
        while len(child_pids(proc.pid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        seen = sorted(_visible_devices(pid) for pid in child_pids(proc.pid))
        assert seen == ["5", "5", "7", "7"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
