"""``beam-tensorrt flink-cluster``: a Flink session cluster on this machine, for local use and trials."""
from __future__ import annotations


def add(sub) -> None:
    p = sub.add_parser("flink-cluster", help="run a local Flink session cluster: JobManager, TaskManagers, worker "
                                             "pool and job server (Java 17 and Maven)",
                       description="Start a Flink session cluster of one JobManager and N TaskManagers, each its own "
                                   "JVM (from the Flink job server's jars), a beam-tensorrt worker pool for the SDK "
                                   "workers, and Beam's job server in front; print how to submit pipelines, and run "
                                   "until stopped. Flink restarts failed jobs (docs/flink-and-kafka.md); checkpoints and logs go "
                                   "to --dir.")
    p.add_argument("--dir", default="flink-cluster", help="configuration, logs and checkpoints (default: ./flink-cluster)")
    p.add_argument("--taskmanagers", type=int, default=2, help="TaskManager JVMs (default: 2)")
    p.add_argument("--slots", type=int, default=2, help="task slots per TaskManager (default: 2)")
    p.add_argument("--pool-arg", action="append", default=[], metavar="FLAG",
                   help="a flag for the worker pool, e.g. --pool-arg=--prestart=4 (repeatable)")
    p.add_argument("--extra-classpath", default="", metavar="JARS",
                   help="more jars for every JVM of the cluster (':'-separated), e.g. Beam's KafkaIO: "
                        "\"$(python scripts/kafka_io.py classpath --flink)\"")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import UsageError
    from ..runners.flink_cluster import serve

    if args.taskmanagers < 1 or args.slots < 1:
        raise UsageError("--taskmanagers and --slots take a whole number of at least 1")
    return serve(args.dir, args.taskmanagers, args.slots, args.pool_arg, args.extra_classpath)
