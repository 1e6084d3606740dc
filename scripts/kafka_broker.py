#!/usr/bin/env python3
"""A real single-node Kafka broker for the tests and the streaming examples: Apache Kafka's own jars
from Maven Central (scripts/kafka/pom.xml), KRaft mode (broker and controller in one JVM, no
ZooKeeper), bound to 127.0.0.1. Needs a JDK (17+) and Maven; downloads nothing else.

    python scripts/kafka_broker.py start --dir out/kafka [--port 9092]   # prints the address, returns
    python scripts/kafka_broker.py stop --dir out/kafka
    python scripts/kafka_broker.py kill --dir out/kafka                  # SIGKILL: a crash, for fault trials

The folder keeps the broker's data, log (broker.log) and pid: `start` on a folder that has data
restarts the same broker with its topics and messages. Python callers use ``Broker`` directly.
"""
from __future__ import annotations

import argparse
import base64
import signal
import subprocess
import tempfile
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

try:
    from scripts import local_services, maven_classpath
except ImportError:  # run as a file: python scripts/kafka_broker.py
    import local_services  # type: ignore[no-redef]
    import maven_classpath  # type: ignore[no-redef]

POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"


class BrokerError(RuntimeError):
    """The broker cannot be started, with the reason (and the end of its log)."""


def classpath() -> str:
    try:
        return maven_classpath.classpath(POM)
    except maven_classpath.JavaToolsError as e:
        raise BrokerError(f"the Kafka broker {e}") from None


def cluster_id(draw=uuid.uuid4) -> str:
    """A Kafka cluster id: a random UUID in URL-safe base64, drawn again while it starts with "-"
    (the storage tool would read such an id as an option; Kafka's own ids avoid it the same way)."""
    while True:
        text = base64.urlsafe_b64encode(draw().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


@dataclass
class Broker:
    """A broker whose data, log and pid live in ``folder``.

    Example::

        broker = Broker(Path("out/kafka"))
        broker.start()            # -> "127.0.0.1:PORT"
        ...
        broker.stop()
    """

    folder: Path
    port: int = 0  # 0: a free port on first start; a restart keeps the port it had

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _properties(self, controller_port: int) -> str:
        return "\n".join([
            "process.roles=broker,controller", "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names=CONTROLLER", "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={self.folder.resolve() / 'data'}",
            # one node: every internal topic has one replica; consumer groups start at once
            "offsets.topic.replication.factor=1", "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1", "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1", "group.initial.rebalance.delay.ms=0",
            "num.partitions=1", "auto.create.topics.enable=true", ""])

    def start(self, timeout: float = 120.0) -> str:
        """Start (or restart, on a folder with data) the broker; its address once it accepts clients."""
        self.folder.mkdir(parents=True, exist_ok=True)
        pid = self.pid()
        if pid is not None:
            raise BrokerError(f"a broker is already running from {self.folder} (pid {pid}); stop it first")
        config = self.folder / "server.properties"
        if config.exists():  # a restart: the same ports, the same data
            props = dict(line.split("=", 1) for line in config.read_text().splitlines() if "=" in line)
            self.port = int(props["advertised.listeners"].rsplit(":", 1)[1])
            controller = int(props["controller.quorum.voters"].rsplit(":", 1)[1])
        else:
            self.port = self.port or local_services.free_port()
            controller = local_services.free_port()
            config.write_text(self._properties(controller))
        cp = classpath()
        java = ["java", "-Xms256m", "-Xmx512m", f"-Djava.io.tmpdir={tempfile.gettempdir()}", "-cp", cp]
        if not (self.folder / "data" / "meta.properties").exists():
            fmt = subprocess.run(java + ["kafka.tools.StorageTool", "format", "-t", cluster_id(), "-c", str(config)],
                                 capture_output=True, text=True, timeout=120)
            if fmt.returncode != 0:
                raise BrokerError(f"formatting {self.folder / 'data'} failed:\n{(fmt.stdout + fmt.stderr)[-2000:]}")
        log = open(self.folder / "broker.log", "ab")
        proc = subprocess.Popen(java + ["kafka.Kafka", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        (self.folder / "broker.pid").write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = (self.folder / "broker.log").read_text(errors="replace")[-3000:]
                raise BrokerError(f"the Kafka broker exited with code {proc.returncode}:\n{tail}")
            if local_services.listening(self.port):
                return self.address
            time.sleep(0.2)
        self.kill()
        raise BrokerError(f"the Kafka broker did not listen on {self.address} within {timeout:.0f} s")

    def pid(self) -> "int | None":
        """The running broker's pid, or None."""
        return local_services.running_pid(self.folder / "broker.pid")

    def stop(self, wait: float = 30.0) -> None:
        """A clean shutdown (SIGTERM), SIGKILL after ``wait`` seconds."""
        local_services.end(self.folder / "broker.pid", signal.SIGTERM, wait)

    def kill(self) -> None:
        """kill -9: the broker dies as in a crash."""
        local_services.end(self.folder / "broker.pid", signal.SIGKILL, 10.0)


def main(argv: "list[str] | None" = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("start", "stop", "kill"))
    ap.add_argument("--dir", type=Path, required=True, help="the broker's folder (data, log, pid)")
    ap.add_argument("--port", type=int, default=0, help="client port on a first start (default: a free one)")
    args = ap.parse_args(argv)
    broker = Broker(args.dir, args.port)
    try:
        if args.command == "start":
            print(f"kafka broker listening on {broker.start()} (pid {broker.pid()}, log {args.dir / 'broker.log'})",
                  flush=True)
        elif args.command == "stop":
            broker.stop()
        else:
            broker.kill()
    except BrokerError as e:
        print(f"kafka_broker: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
