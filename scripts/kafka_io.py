#!/usr/bin/env python3
"""Beam's Kafka IO for Python (and Beam YAML) pipelines, from Maven Central: Beam Java's expansion
service with KafkaIO, whose transforms run in a Java worker pool started beside it (the EXTERNAL
environment; no Docker). Needs a JDK (17+) and Maven. For tests and local trials: both JVMs listen
on every interface, as Beam's own entry points do.

    python scripts/kafka_io.py start --dir out/kafka-io [--port 8098]   # prints the address, returns
    python scripts/kafka_io.py stop --dir out/kafka-io

A pipeline then passes ``expansion_service="localhost:PORT"`` to ``ReadFromKafka``/``WriteToKafka``
(see examples/kafka_classify.py).

With ``--flink``, the expansion service is Beam 2.62's (the project's Flink job server's version,
kafka_io_flink/pom.xml) and expands Kafka reads into KafkaIO's unbounded source, which Flink runs
and checkpoints itself, and Kafka writes into a Java SDK harness inside the TaskManager (EMBEDDED);
no Java worker pool is started. The job server needs the same jars:

    beam-tensorrt flink-job-server --extra-classpath "$(python scripts/kafka_io.py classpath --flink)"
    python scripts/kafka_io.py start --flink --dir out/kafka-io-flink
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

try:
    from scripts import local_services, maven_classpath
except ImportError:  # run as a file: python scripts/kafka_io.py
    import local_services  # type: ignore[no-redef]
    import maven_classpath  # type: ignore[no-redef]

POM = Path(__file__).resolve().parent / "kafka_io" / "pom.xml"
FLINK_POM = Path(__file__).resolve().parent / "kafka_io_flink" / "pom.xml"
SERVICES = ("workers", "expansion")


class KafkaIOError(RuntimeError):
    """The services cannot be started, with the reason (and the end of a log)."""


@dataclass
class KafkaIO:
    """The expansion service and its Java worker pool, their logs and pids in ``folder``.

    Example::

        io = KafkaIO(Path("out/kafka-io"))
        address = io.start()      # "localhost:PORT", for ReadFromKafka(expansion_service=...)
        ...
        io.stop()
    """

    folder: Path
    port: int = 0
    flink: bool = False  # Beam 2.62's KafkaIO for the Flink job server (see the module's docstring)

    @property
    def address(self) -> str:
        return f"localhost:{self.port}"

    def _spawn(self, name: str, cmd: list[str], env: dict) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "ab")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        (self.folder / f"{name}.pid").write_text(str(proc.pid))
        return proc

    def _wait(self, name: str, proc: subprocess.Popen, port: int, deadline: float) -> None:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = (self.folder / f"{name}.log").read_text(errors="replace")[-3000:]
                self.stop()
                raise KafkaIOError(f"the Kafka IO {name} JVM exited with code {proc.returncode}:\n{tail}")
            if local_services.listening(port):
                return
            time.sleep(0.2)
        self.stop()
        raise KafkaIOError(f"the Kafka IO {name} JVM did not listen on port {port} in time")

    def start(self, timeout: float = 180.0) -> str:
        """Start the Java worker pool, then the expansion service whose transforms it runs."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if any(local_services.running_pid(self.folder / f"{name}.pid") for name in SERVICES):
            raise KafkaIOError(f"Kafka IO services already run from {self.folder}; stop them first")
        cp = jars(self.flink)
        java = ["java", f"-Djava.io.tmpdir={tempfile.gettempdir()}", "-cp", cp]  # Java ignores TMPDIR
        self.port = self.port or local_services.free_port()
        deadline = time.monotonic() + timeout
        if self.flink:
            service = self._spawn("expansion", [*java, "org.apache.beam.sdk.expansion.service.ExpansionService",
                                                str(self.port), "--experiments=use_deprecated_read",
                                                "--defaultEnvironmentType=EMBEDDED"], dict(os.environ))
            self._wait("expansion", service, self.port, deadline)
            return self.address
        workers = local_services.free_port()
        options = {"options": {"environmentOptions": [f"external_service_address=localhost:{workers}"]}}
        pool = self._spawn("workers", [*java, "org.apache.beam.fn.harness.ExternalWorkerService"],
                           dict(os.environ, PIPELINE_OPTIONS=json.dumps(options)))
        self._wait("workers", pool, workers, deadline)
        service = self._spawn("expansion", [*java, "org.apache.beam.sdk.expansion.service.ExpansionService",
                                            str(self.port), "--defaultEnvironmentType=EXTERNAL",
                                            f"--defaultEnvironmentConfig=localhost:{workers}"], dict(os.environ))
        self._wait("expansion", service, self.port, deadline)
        return self.address

    def stop(self, wait: float = 20.0) -> None:
        """Stop both JVMs (SIGTERM, SIGKILL after ``wait`` seconds)."""
        for name in reversed(SERVICES):
            local_services.end(self.folder / f"{name}.pid", wait=wait)


def jars(flink: bool = False) -> str:
    """The Kafka IO jars (``flink``: Beam 2.62's, for the Flink job server too), resolved by Maven."""
    try:
        return maven_classpath.classpath(FLINK_POM if flink else POM)
    except maven_classpath.JavaToolsError as e:
        raise KafkaIOError(f"Beam's Kafka IO {e}") from None


def main(argv: "list[str] | None" = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("start", "stop", "classpath"))
    ap.add_argument("--dir", type=Path, help="the services' folder (logs, pids); start and stop need it")
    ap.add_argument("--port", type=int, default=0, help="the expansion service's port (default: a free one)")
    ap.add_argument("--flink", action="store_true", help="Beam 2.62's Kafka IO, for the Flink job server")
    args = ap.parse_args(argv)
    if args.command != "classpath" and args.dir is None:
        ap.error(f"{args.command} needs --dir")
    io = KafkaIO(args.dir or Path("."), args.port, args.flink)
    try:
        if args.command == "classpath":
            print(jars(args.flink))
        elif args.command == "start":
            print(f"kafka io expansion service listening on {io.start()} (logs in {args.dir})", flush=True)
        else:
            io.stop()
    except KafkaIOError as e:
        print(f"kafka_io: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
