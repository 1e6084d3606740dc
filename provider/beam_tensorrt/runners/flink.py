"""A Flink job server for portable pipelines (Python, Beam YAML, Java), resolved from Maven Central.

``beam-tensorrt flink-job-server`` writes a small Maven project into the cache directory, asks Maven
for the classpath of Beam's Flink runner (once; Maven keeps the jars in ~/.m2), and starts Beam's
``FlinkJobServerDriver`` with it: against an embedded Flink (``[local]``, this machine) or a session
cluster (``--flink-master HOST:PORT``). Pipelines then use ``--runner=PortableRunner
--job_endpoint=HOST:PORT``. Needs a JDK (17) and Maven on PATH; on a machine without Maven,
``BEAM_TENSORRT_FLINK_CLASSPATH`` names the jars instead (``classpath`` below).
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Optional

from ..files import atomic_write, cache_root, exclusive_lock, java_tmpdir
from ..errors import MissingPackageError, UserError

log = logging.getLogger("beam_tensorrt.flink")

# The Beam release of the job server (Flink 1.19). Python 2.77 and Java 2.65 SDKs run against it;
# what that skew means is in docs/versions.md.
BEAM_VERSION = "2.62.0"
MAIN_CLASS = "org.apache.beam.runners.flink.FlinkJobServerDriver"
# The job server's jars, for machines without Maven: a classpath resolved elsewhere (for example the
# output of `beam-tensorrt flink-job-server --print-classpath`, jars copied alongside).
CLASSPATH_ENV = "BEAM_TENSORRT_FLINK_CLASSPATH"


def require_tool(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise MissingPackageError(f"`{tool}` is not on PATH: the Flink job server needs a JDK 17 and Maven "
                                f"(e.g. apt-get install openjdk-17-jdk-headless maven)")
    return path


def classpath(beam_version: str = BEAM_VERSION, say=lambda msg: None) -> str:
    """The job server's classpath: ``$BEAM_TENSORRT_FLINK_CLASSPATH`` when set (every jar must
    exist), else resolved by Maven once per version and cached."""
    given = os.environ.get(CLASSPATH_ENV, "").strip()
    if given:
        missing = [p for p in given.split(os.pathsep) if p and not Path(p).is_file()]
        if missing:
            raise FileNotFoundError(f"{CLASSPATH_ENV} names {len(missing)} jar(s) that do not exist, e.g. {missing[0]}")
        return given
    pom = resources.files("beam_tensorrt.runners").joinpath("flink-job-server.pom.xml").read_text()
    pom = pom.replace("@BEAM_VERSION@", beam_version)
    folder = cache_root() / "flink" / f"{beam_version}-{hashlib.sha256(pom.encode()).hexdigest()[:12]}"
    resolved = folder / "classpath.txt"
    with exclusive_lock(folder / ".lock"):
        if resolved.is_file() and all(Path(p).is_file() for p in resolved.read_text().split(os.pathsep) if p):
            return resolved.read_text().strip()
        atomic_write(folder / "pom.xml", pom.encode())
        say(f"resolving Beam {beam_version}'s Flink runner with Maven (first use: ~160 MB into ~/.m2)...")
        out = folder / "classpath.partial"
        proc = subprocess.run([require_tool("mvn"), "-q", "-B", "-Dstyle.color=never", "-f", str(folder / "pom.xml"),
                               "dependency:build-classpath", f"-Dmdep.outputFile={out}"],
                              capture_output=True, text=True)
        if proc.returncode != 0 or not out.is_file():
            detail = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr).strip().splitlines()
            raise UserError(f"Maven could not resolve the Flink runner ({beam_version}): "
                               f"{' '.join(detail[-3:]) or 'no output'}")
        os.replace(out, resolved)
    return resolved.read_text().strip()


@dataclass
class FlinkJobServer:
    """Beam's Flink job server as a child process.

    Args:
        job_port: the job service port (0: any free port, read back once started).
        host: the address it binds (its job and artifact services).
        flink_master: ``[local]`` (an embedded Flink in the job server's JVM) or ``HOST:PORT`` of a
            Flink session cluster's REST endpoint.
        heap: the JVM's heap.
        parallelism: Flink's default parallelism, for jobs that set none (the Java SDK cannot set it
            without Flink's options on its classpath).
        artifacts_dir: where staged pipeline artifacts go (a place the Flink workers can read).
        extra_classpath: more jars, after the runner's own (``os.pathsep``-separated): Java IO that
            Flink runs itself, e.g. Beam's KafkaIO of the runner's version for Kafka reads that
            Flink checkpoints (``scripts/kafka_io.py classpath --flink``).
    """

    job_port: int = 8099
    host: str = "127.0.0.1"
    flink_master: str = "[local]"
    heap: str = "1g"
    parallelism: Optional[int] = None
    artifacts_dir: Optional[str] = None
    extra_classpath: str = ""
    process: Optional[subprocess.Popen] = field(default=None, init=False)
    endpoint: Optional[str] = field(default=None, init=False)

    def command(self, cp: str) -> list[str]:
        artifacts = self.artifacts_dir or str(cache_root() / "flink" / "artifacts")
        if self.extra_classpath:
            cp = os.pathsep.join([cp, self.extra_classpath])
        command = [require_tool("java"), f"-Xmx{self.heap}", java_tmpdir(), "-cp", cp, MAIN_CLASS, f"--flink-master={self.flink_master}",
                   f"--job-host={self.host}", f"--job-port={self.job_port}", "--artifact-port=0",
                   # Beam's default, 8097, is also ours (`beam-tensorrt serve`); this service is not needed.
                   "--expansion-port=-1", f"--artifacts-dir={artifacts}"]
        if self.parallelism:
            conf = cache_root() / "flink" / f"conf-parallelism-{self.parallelism}"
            atomic_write(conf / "flink-conf.yaml", f"parallelism.default: {self.parallelism}\n".encode())
            command.append(f"--flink-conf-dir={conf}")
        return command

    def start(self, timeout: float = 120.0, say=lambda msg: None) -> str:
        """Start it and return its job endpoint ``HOST:PORT`` once it accepts jobs."""
        command = self.command(classpath(say=say))
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            found = re.search(r"JobService started on [^:\s]+:(\d+)", line)
            if found:
                self.endpoint = f"{self.host}:{found.group(1)}"
                threading.Thread(target=self._drain, daemon=True).start()
                return self.endpoint
        self.stop()
        raise RuntimeError("the Flink job server did not start: " + " | ".join(lines[-5:]))

    def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            log.debug("flink: %s", line.rstrip())

    def stop(self) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def serve(job_port: int, host: str, flink_master: str, heap: str, parallelism: Optional[int] = None,
          extra_classpath: str = "") -> int:
    """``beam-tensorrt flink-job-server``: run until SIGTERM/SIGINT."""
    server = FlinkJobServer(job_port=job_port, host=host, flink_master=flink_master, heap=heap,
                            parallelism=parallelism, extra_classpath=extra_classpath)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: stopping.set())
    endpoint = server.start(say=lambda msg: print(f"beam-tensorrt: {msg}", file=sys.stderr, flush=True))
    print(f"beam-tensorrt Flink job server listening on {endpoint} (Flink: {flink_master}, Beam {BEAM_VERSION}); "
          f"run pipelines with --runner=PortableRunner --job_endpoint={endpoint}", flush=True)
    while not stopping.wait(0.5):
        if server.process is not None and server.process.poll() is not None:
            raise RuntimeError(f"the Flink job server exited with code {server.process.returncode}")
    server.stop()
    return 0
