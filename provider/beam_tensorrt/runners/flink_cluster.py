"""A Flink session cluster on this machine: one JobManager and N TaskManagers, each its own JVM,
started from the Flink job server's jars (Maven Central serves Flink's runtime jars, not its
``flink-dist`` distribution and scripts), plus a ``beam-tensorrt worker-pool`` for the SDK workers
and Beam's job server in front.

Why: a pipeline that outgrows one process runs on such a cluster, and what happens when one of its
processes dies (a TaskManager, the worker pool, an SDK worker) can only be seen with real
processes. ``beam-tensorrt flink-cluster`` starts it for local use; tests and ``bench/`` kill its
parts. Faults are survived the way Flink survives them: a restart strategy (``restart_attempts``
fixed-delay restarts), fast heartbeats so a dead TaskManager is noticed in seconds, and checkpoints
in ``FOLDER/checkpoints`` for streaming jobs that enable them.

On one machine every TaskManager's SDK workers come from the one pool: a pipeline's ``EXTERNAL``
environment names one address. On a cluster of hosts each host runs its pool on the same port
(``--environment_config=localhost:50000``), beside its TaskManager.
"""
from __future__ import annotations

import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..files import atomic_write, java_tmpdir
from ..ports import free_port
from .flink import FlinkJobServer, classpath, require_tool

log = logging.getLogger("beam_tensorrt.flink")

JOBMANAGER = "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint"
TASKMANAGER = "org.apache.flink.runtime.taskexecutor.TaskManagerRunner"


def cluster_config(rpc_port: int, rest_port: int, slots: int, folder: Path, restart_attempts: int) -> str:
    """Flink's ``flink-conf.yaml``. A TaskManager started without Flink's scripts must be told every
    memory component (the scripts derive them); the sizes fit small local TaskManagers. Working
    directories (a TaskManager's BLOB cache of every job's jars, kept across its restarts) go in the
    cluster's folder: by default Flink puts them in /tmp under the TaskManager's name, shared by every
    cluster on the machine, where they grow by each job's jars and a restarted TaskManager spends
    minutes sifting them before it registers."""
    return f"""\
jobmanager.rpc.address: 127.0.0.1
jobmanager.rpc.port: {rpc_port}
jobmanager.bind-host: 127.0.0.1
jobmanager.memory.process.size: 1024m
rest.address: 127.0.0.1
rest.bind-address: 127.0.0.1
rest.port: {rest_port}
taskmanager.host: 127.0.0.1
taskmanager.bind-host: 127.0.0.1
taskmanager.numberOfTaskSlots: {slots}
taskmanager.cpu.cores: {slots}
taskmanager.memory.framework.heap.size: 128m
taskmanager.memory.task.heap.size: 512m
taskmanager.memory.framework.off-heap.size: 128m
taskmanager.memory.task.off-heap.size: 0m
taskmanager.memory.managed.size: 128m
taskmanager.memory.network.min: 160m
taskmanager.memory.network.max: 160m
taskmanager.memory.jvm-metaspace.size: 256m
taskmanager.memory.jvm-overhead.min: 192m
taskmanager.memory.jvm-overhead.max: 192m
cluster.evenly-spread-out-slots: true
heartbeat.interval: 1000
heartbeat.timeout: 6000
restart-strategy.type: fixed-delay
restart-strategy.fixed-delay.attempts: {restart_attempts}
restart-strategy.fixed-delay.delay: 2 s
state.checkpoints.dir: file://{folder / 'checkpoints'}
process.working-dir: {folder / 'work'}
execution.checkpointing.externalized-checkpoint-retention: RETAIN_ON_CANCELLATION
"""


@dataclass
class FlinkCluster:
    """A local Flink session cluster with its worker pool and job server, as child processes.

    Args:
        folder: configuration, logs, checkpoints and staged artifacts.
        taskmanagers: TaskManager JVMs.
        slots: task slots per TaskManager.
        restart_attempts: restarts Flink makes of a failed job before failing it, 2 s apart. Ten
            ride out a worker pool restarting on a loaded host: with three, one streaming trial
            in ten ran out of attempts while the pool came back and its job failed.
        pool_args: extra ``beam-tensorrt worker-pool`` flags (``--prestart``, ``--preload``...).
        extra_classpath: more jars for every JVM of the cluster, after the runner's own (see
            ``FlinkJobServer``), e.g. Beam's KafkaIO for Kafka sources that Flink checkpoints.

    Example::

        cluster = FlinkCluster(Path("out/flink"), taskmanagers=2)
        cluster.start()
        # --runner=PortableRunner --job_endpoint={cluster.job_endpoint}
        # --environment_type=EXTERNAL --environment_config={cluster.pool_address}
        cluster.kill("taskmanager-1")   # kill -9, for a fault trial
        cluster.stop()
    """

    folder: Path
    taskmanagers: int = 2
    slots: int = 2
    restart_attempts: int = 10
    pool_args: list[str] = field(default_factory=list)
    extra_classpath: str = ""
    rest_port: int = 0
    processes: dict[str, subprocess.Popen] = field(default_factory=dict, init=False)
    job_server: Optional[FlinkJobServer] = field(default=None, init=False)
    job_endpoint: Optional[str] = field(default=None, init=False)
    pool_address: Optional[str] = field(default=None, init=False)

    @property
    def rest_address(self) -> str:
        return f"127.0.0.1:{self.rest_port}"

    def start(self, timeout: float = 300.0, say=lambda msg: None) -> "FlinkCluster":
        """Start every part and return once the TaskManagers registered and the job server listens."""
        self.folder = Path(self.folder).resolve()
        (self.folder / "logs").mkdir(parents=True, exist_ok=True)
        self.rest_port = self.rest_port or free_port()
        conf = self.folder / "conf"
        atomic_write(conf / "flink-conf.yaml", cluster_config(free_port(), self.rest_port, self.slots, self.folder,
                                                          self.restart_attempts).encode())
        self._cp = os.pathsep.join(p for p in (classpath(say=say), self.extra_classpath) if p)
        try:
            self._java("jobmanager", JOBMANAGER)
            for i in range(1, self.taskmanagers + 1):
                self.start_taskmanager(i)
            self.wait_for_taskmanagers(self.taskmanagers, timeout)
            self.pool_address = self._start_pool(timeout)
            self.job_server = FlinkJobServer(job_port=0, flink_master=self.rest_address,
                                             artifacts_dir=str(self.folder / "artifacts"),
                                             extra_classpath=self.extra_classpath)
            self.job_endpoint = self.job_server.start(timeout=timeout, say=say)
        except BaseException:
            self.stop()
            raise
        return self

    def _java(self, name: str, main: str, *extra: str) -> subprocess.Popen:
        log_file = open(self.folder / "logs" / f"{name}.log", "ab")
        command = [require_tool("java"), "-Xmx768m", java_tmpdir(), "-cp", self._cp, main, "--configDir", str(self.folder / "conf"),
                   *extra]
        self.processes[name] = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        log_file.close()
        return self.processes[name]

    def start_taskmanager(self, i: int) -> subprocess.Popen:
        """Start (or restart) TaskManager ``i``, named ``taskmanager-i``."""
        return self._java(f"taskmanager-{i}", TASKMANAGER, f"-Dtaskmanager.resource-id=taskmanager-{i}")

    def restart_pool(self, port: int, timeout: float = 120.0) -> str:
        """Start the worker pool again on ``port`` (the address jobs were given), after a fault."""
        return self._start_pool(timeout, port)

    def _start_pool(self, timeout: float, port: int = 0) -> str:
        proc = subprocess.Popen([sys.executable, "-m", "beam_tensorrt.cli", "worker-pool", "--port", str(port),
                                 *self.pool_args], stdout=subprocess.PIPE,
                                stderr=open(self.folder / "logs" / "worker-pool.log", "ab"), text=True)
        self.processes["worker-pool"] = proc
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready else ""  # type: ignore[union-attr]
        found = re.search(r"listening on ([\d.]+:\d+)", line)
        if not found:
            raise RuntimeError(f"the worker pool did not start: {line.strip() or 'no output'} "
                               f"(see {self.folder / 'logs' / 'worker-pool.log'})")
        return found.group(1)

    def overview(self) -> dict:
        with urllib.request.urlopen(f"http://{self.rest_address}/overview", timeout=5) as r:
            return json.loads(r.read())

    def wait_for_taskmanagers(self, count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"Flink's {name} exited with code {proc.returncode}: see "
                                       f"{self.folder / 'logs' / (name + '.log')}")
            try:
                seen = self.overview()["taskmanagers"]
            except OSError:
                seen = None
            if seen == count:
                return
            time.sleep(0.5)
        raise RuntimeError(f"{count} TaskManager(s) did not register with the JobManager within {timeout:g} s "
                           f"(last seen: {seen})")

    def jobs(self) -> list[dict]:
        with urllib.request.urlopen(f"http://{self.rest_address}/jobs/overview", timeout=5) as r:
            return json.loads(r.read())["jobs"]

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` (kill -9 by default) to one part: ``jobmanager``, ``taskmanager-i`` or
        ``worker-pool``."""
        proc = self.processes[name]
        if proc.poll() is None:
            os.kill(proc.pid, sig)
            proc.wait(timeout=30)

    def stop(self) -> None:
        if self.job_server is not None:
            self.job_server.stop()
        for name, proc in reversed(list(self.processes.items())):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def serve(folder: str, taskmanagers: int, slots: int, pool_args: list[str], extra_classpath: str = "") -> int:
    """``beam-tensorrt flink-cluster``: run until SIGTERM/SIGINT."""
    import threading

    cluster = FlinkCluster(Path(folder), taskmanagers=taskmanagers, slots=slots, pool_args=pool_args,
                           extra_classpath=extra_classpath)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: stopping.set())
    cluster.start(say=lambda msg: print(f"beam-tensorrt: {msg}", file=sys.stderr, flush=True))
    print(f"beam-tensorrt Flink cluster: JobManager http://{cluster.rest_address}, {taskmanagers} TaskManager(s) "
          f"of {slots} slots, worker pool {cluster.pool_address}, job server {cluster.job_endpoint}; run pipelines "
          f"with --runner=PortableRunner --job_endpoint={cluster.job_endpoint} --environment_type=EXTERNAL "
          f"--environment_config={cluster.pool_address} (logs and checkpoints in {cluster.folder})", flush=True)
    try:
        while not stopping.wait(0.5):
            for name, proc in cluster.processes.items():
                if proc.poll() is not None and not name.startswith("taskmanager"):
                    raise RuntimeError(f"the cluster's {name} exited with code {proc.returncode}")
    finally:
        cluster.stop()
    return 0
