"""``beam-tensorrt flink-job-server``: Beam's Flink job server, for portable pipelines."""
from __future__ import annotations

import sys


def add(sub) -> None:
    p = sub.add_parser("flink-job-server", help="run Beam's Flink job server (resolved with Maven) for portable pipelines",
                       description="Start Beam's Flink job server: an embedded Flink on this machine ([local]) or a "
                                   "Flink session cluster (--flink-master HOST:PORT). Pipelines then run with "
                                   "--runner=PortableRunner --job_endpoint=HOST:PORT. Needs a JDK 17 and Maven; "
                                   "the first run downloads the runner's jars (~160 MB) into ~/.m2. Without Maven, "
                                   "BEAM_TENSORRT_FLINK_CLASSPATH names the jars.")
    p.add_argument("--port", type=int, default=8099, help="job service port (default: 8099; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--flink-master", default="[local]",
                   help="[local] (default: an embedded Flink) or HOST:PORT of a Flink session cluster's REST endpoint")
    p.add_argument("--heap", default="1g", help="the job server JVM's heap (default: 1g)")
    p.add_argument("--parallelism", type=int, default=None,
                   help="Flink's default parallelism for jobs that set none (Java pipelines cannot set it)")
    p.add_argument("--extra-classpath", default="", metavar="JARS",
                   help="more jars after the runner's (':'-separated), e.g. Beam's KafkaIO for Kafka reads that "
                        "Flink checkpoints: \"$(python scripts/kafka_io.py classpath --flink)\"")
    p.add_argument("--print-classpath", action="store_true",
                   help="print the job server's classpath and exit (to copy its jars to a machine without Maven: "
                        "there, set BEAM_TENSORRT_FLINK_CLASSPATH)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..runners.flink import classpath, serve

    if args.print_classpath:
        print(classpath(say=lambda msg: print(msg, file=sys.stderr)))
        return 0
    return serve(args.port, args.host, args.flink_master, args.heap, args.parallelism, args.extra_classpath)
