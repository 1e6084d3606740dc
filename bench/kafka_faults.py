#!/usr/bin/env python3
"""Fault trials on a streaming job: Kafka in, ClassifyText, Kafka out, on a local Flink session
cluster (``beam-tensorrt flink-cluster`` with Beam 2.62's KafkaIO on its classpath), with one part of
the cluster killed (kill -9) while messages flow.

Each trial runs examples/kafka_classify.py on the cluster (``--streaming``, checkpoints every
``--checkpoint-ms``, parallelism ``--partitions`` over an input topic of as many partitions, Python
workers from the cluster's pool) on topics of its own; once a warm-up message has come out (the job deployed and
reading), it sends N keyed messages at a steady rate and injects the fault ``--after`` seconds into sending, waits until every key came out
(or ``--timeout``), cancels the job and compares the output topics with the input topic key by key:
lost (must be 0) and duplicated, raw and after a consumer keeps one message per output key (the
input's TOPIC/PARTITION/OFFSET: target 0) (at-least-once output writes the messages after the last checkpoint
again), the longest stall of the output after the fault, and latency (output record time - when the
message was due to be sent) p50/p95/p99/max. Faults as in bench.flink_faults: none, taskmanager,
worker-pool, sdk-worker.

    python -m bench.kafka_faults --trials 10 [--faults none,taskmanager,worker-pool,sdk-worker]
        [--messages 1000 --rate 50] [--partitions 2] [--model NAME_OR_DIR --backend auto --max-batch-size 32]
        [--json docs/bench/NAME.json]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.flink_faults import FAULTS, exceptions, inject

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["A lovely, moving film.", "Dull and far too long.", "I laughed all the way through.",
         "A waste of a good cast."]


def produce(address: str, topic: str, messages: int, rate: float) -> None:
    """``messages`` messages keyed "0".."N-1" at ``rate`` a second (acks from every replica)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=address, acks="all", linger_ms=5)
    start = time.monotonic()
    for i in range(messages):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        producer.send(topic, key=str(i).encode(), value=TEXTS[i % 4].encode())
    producer.flush(timeout=60)
    producer.close()


WARM_UP = b"warm-up"


def create_topic(address: str, topic: str, partitions: int) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=address)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()


def warm(address: str, texts: str, labels: str, timeout: float):
    """Send one warm-up message and wait until it comes out; seconds it took (None: it did not)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=address, acks="all")
    producer.send(texts, key=WARM_UP, value=TEXTS[0].encode())
    producer.flush(timeout=60)
    producer.close()
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if any(k == WARM_UP for k, _ in records(address, labels)):
            return round(time.monotonic() - start, 1)
        time.sleep(1)
    return None


def records(address: str, topic: str, places: "list | None" = None) -> list:
    """Every record of ``topic`` as (its input's key, timestamp in ms); with ``places``, each one's
    own Kafka key (its input's TOPIC/PARTITION/OFFSET) appended there too."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=address, auto_offset_reset="earliest", consumer_timeout_ms=2000)
    out = []
    for m in consumer:
        key = json.loads(m.value).get("key")
        out.append((key.encode() if key is not None else None, m.timestamp))
        if places is not None:
            places.append(m.key)
    consumer.close()
    return out


def cancel_all(cluster) -> None:
    """Cancel every job of the cluster that has not ended (a trial's job runs until cancelled)."""
    for job in cluster.jobs():
        if job["state"] not in ("FINISHED", "CANCELED", "FAILED"):
            request = urllib.request.Request(f"http://{cluster.rest_address}/jobs/{job['jid']}?mode=cancel",
                                             method="PATCH")
            urllib.request.urlopen(request, timeout=10).close()


def percentile(values: list, q: float):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(frozen=True)
class Plan:
    """What a trial sends and when it strikes."""

    messages: int = 1000
    rate: float = 50.0  # messages a second
    after: float = 8.0  # seconds into sending when the fault comes
    checkpoint_ms: int = 2000
    timeout: float = 300.0  # seconds to wait for the warm-up message, and for every key after sending
    model: str = "sentiment-minilm"  # what ClassifyText loads (a name or a folder)
    backend: str = "auto"  # ClassifyText's backend
    # Partitions of the input topic: one per reader (the job's parallelism, at most the cluster's
    # slots), so that every TaskManager reads and a killed one always takes a reader with it.
    partitions: int = 2
    batch: int = 32  # ClassifyText's max_batch_size
    pipeline_args: tuple = ()  # more Beam options for the job, e.g. the runner's bundle limits


def kafka_trial(cluster, broker: str, kafka_io: str, fault: str, n: int, plan: Plan, folder: Path) -> dict:
    """One streaming job on its own topics with ``fault`` injected; what came out, key by key."""
    texts, labels, errors = f"texts-{n}", f"labels-{n}", f"errors-{n}"
    log = folder / f"job-{n}.log"
    create_topic(broker, texts, plan.partitions)
    job = subprocess.Popen(
        [sys.executable, "examples/kafka_classify.py", "--bootstrap-servers", broker, "--kafka-io", kafka_io,
         "--input-topic", texts, "--output-topic", labels, "--errors-topic", errors, "--group-id", f"trial-{n}",
         "--model", plan.model, "--backend", plan.backend, "--max-batch-size", str(plan.batch),
         "--", "--runner=PortableRunner", f"--job_endpoint={cluster.job_endpoint}",
         "--environment_type=EXTERNAL", f"--environment_config={cluster.pool_address}", f"--parallelism={plan.partitions}",
         "--streaming", f"--checkpointing_interval={plan.checkpoint_ms}", "--environment_cache_millis=60000",
         *plan.pipeline_args],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    # The job is deployed and reading when a warm-up message has come out: messages are sent from
    # then on, and the fault comes --after seconds into sending (mid-stream).
    warm_up = warm(broker, texts, labels, plan.timeout)
    notes: dict = {}
    hitter = threading.Thread(target=inject, args=(cluster, fault, plan.after, notes), daemon=True)
    sender = threading.Thread(target=produce, args=(broker, texts, plan.messages, plan.rate), daemon=True)
    sent_at = time.time()
    hitter.start()
    sender.start()
    sender.join()
    hitter.join(timeout=300)
    deadline = time.monotonic() + plan.timeout
    out: list = []
    places: list = []
    while time.monotonic() < deadline:
        places: list = []
        out = records(broker, labels, places) + records(broker, errors, places)
        if len({k for k, _ in out}) >= plan.messages:
            break
        time.sleep(3)
    try:
        cancel_all(cluster)
    except OSError:
        pass
    job.kill()
    job.wait(timeout=60)
    kept = [(k, t, place) for (k, t), place in zip(out, places) if k != WARM_UP]
    out = [(k, t) for k, t, _ in kept]
    places = [place for _, _, place in kept]
    keys = [k for k, _ in out]
    out_keys = set(keys)
    wanted = {str(i).encode() for i in range(plan.messages)}
    stamps = sorted(t / 1000 for _, t in out)
    fault_at = notes.get("fault_wall")
    after_fault = [t for t in stamps if fault_at is None or t >= fault_at - 1]
    stall = max((b - a for a, b in zip(after_fault, after_fault[1:])), default=None)
    # A message's latency: when its first output was written - when it was due to be sent.
    first = {}
    for k, t in out:
        first[k] = min(first.get(k, t), t)
    latency = [first[k] / 1000 - (sent_at + int(k) / plan.rate) for k in first if k in wanted]
    result = {"fault": fault, "messages": plan.messages, "rate": plan.rate, "warm_up_s": warm_up, "out": len(keys),
              "lost": len(wanted - set(keys)), "duplicated": len(keys) - len(set(keys)),
              # What a consumer keeping one message per Kafka key (the input's place) still sees twice.
              "duplicated_after_key_dedup": len(set(places)) - len(set(out_keys)),
              "hit": notes.get("fault") == fault or fault == "none",
              "failures_recovered": exceptions(cluster, notes["job"]) if notes.get("job") else None,
              "longest_output_stall_s": round(stall, 2) if stall is not None else None,
              **{f"latency_{name}_s": round(percentile(latency, q), 3) if latency else None
                 for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))}}
    if result["lost"]:
        result["job_stderr"] = log.read_text(errors="replace")[-2000:]
    if fault == "taskmanager":
        cluster.start_taskmanager(1)
        cluster.wait_for_taskmanagers(cluster.taskmanagers)
    return result


def main() -> int:
    from bench.common import device, write_json
    from beam_tensorrt.runners.flink_cluster import FlinkCluster

    sys.path.insert(0, str(ROOT / "scripts"))
    import kafka_broker
    import kafka_io

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10, help="trials per fault")
    ap.add_argument("--faults", default="none,taskmanager,worker-pool,sdk-worker")
    ap.add_argument("--messages", type=int, default=Plan.messages)
    ap.add_argument("--rate", type=float, default=Plan.rate, help="messages a second")
    ap.add_argument("--after", type=float, default=Plan.after, help="seconds into sending when the fault comes")
    ap.add_argument("--checkpoint-ms", type=int, default=Plan.checkpoint_ms)
    ap.add_argument("--timeout", type=float, default=Plan.timeout, help="seconds to wait for every key after sending")
    ap.add_argument("--model", default=Plan.model, help="ClassifyText's model (a name or a folder)")
    ap.add_argument("--max-batch-size", type=int, default=Plan.batch)
    ap.add_argument("--backend", default=Plan.backend, help="ClassifyText's backend")
    slots = FlinkCluster.slots * FlinkCluster.taskmanagers
    ap.add_argument("--partitions", type=int, default=Plan.partitions, choices=range(1, slots + 1),
                    help=f"input topic partitions = the job's parallelism (the cluster has {slots} slots)")
    ap.add_argument("--pipeline-arg", action="append", default=[],
                    help="a Beam option for the job, e.g. --pipeline-arg=--max_bundle_time_mills=1000 (Flink's spelling)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    faults = [f for f in args.faults.split(",") if f]
    plan = Plan(messages=args.messages, rate=args.rate, after=args.after, checkpoint_ms=args.checkpoint_ms,
                timeout=args.timeout, model=args.model, backend=args.backend, partitions=args.partitions,
                batch=args.max_batch_size, pipeline_args=tuple(args.pipeline_arg))
    unknown = set(faults) - set(FAULTS)
    if unknown:
        ap.error(f"unknown faults {sorted(unknown)}; choose from {', '.join(FAULTS)}")
    survivors = FlinkCluster.slots * (FlinkCluster.taskmanagers - 1)
    if "taskmanager" in faults and plan.partitions > survivors:
        # the job (parallelism = partitions) could not be rescheduled before the TaskManager is back
        ap.error(f"--partitions {plan.partitions} with the taskmanager fault: the TaskManager left has "
                 f"{survivors} slots; use --partitions {survivors} or fewer")
    folder = Path(tempfile.mkdtemp(prefix="kafka-faults-"))
    broker = kafka_broker.Broker(folder / "broker")
    io = kafka_io.KafkaIO(folder / "io", flink=True)
    trials = []
    try:
        address = broker.start()
        expansion = io.start()
        cluster = FlinkCluster(folder / "cluster", extra_classpath=kafka_io.jars(flink=True)).start(say=print)
        try:
            for fault in faults:
                for _ in range(args.trials):
                    r = kafka_trial(cluster, address, expansion, fault, len(trials), plan, folder)
                    trials.append(r)
                    print(json.dumps(r), flush=True)
        finally:
            cluster.stop()
    finally:
        io.stop()
        broker.stop()
    print(f"\n{'fault':<13}{'trials':>7}{'hit':>5}{'lost':>6}{'dup':>6}{'dup/key':>8}{'recovered':>10}{'stall s':>9}"
          f"{'p50 s':>7}{'p95 s':>7}{'p99 s':>7}{'max s':>7}")
    for fault in faults:
        rs = [t for t in trials if t["fault"] == fault]
        stalls = [t["longest_output_stall_s"] or 0 for t in rs]
        print(f"{fault:<13}{len(rs):>7}{sum(t['hit'] for t in rs):>5}{sum(t['lost'] for t in rs):>6}"
              f"{sum(t['duplicated'] for t in rs):>6}{sum(t['duplicated_after_key_dedup'] for t in rs):>8}"
              f"{sum(t['failures_recovered'] or 0 for t in rs):>10}"
              f"{max(stalls):>9.1f}{percentile([t['latency_p50_s'] or 0 for t in rs], 0.5):>7.2f}"
              f"{max(t['latency_p95_s'] or 0 for t in rs):>7.2f}{max(t['latency_p99_s'] or 0 for t in rs):>7.2f}"
              f"{max(t['latency_max_s'] or 0 for t in rs):>7.2f}")
    write_json(args.json, {"messages": args.messages, "rate": args.rate, "after_s": args.after,
                           "checkpoint_ms": args.checkpoint_ms, "model": args.model, "backend": args.backend,
                           "max_batch_size": args.max_batch_size, "partitions": args.partitions, "device": device(),
                           "pipeline_args": args.pipeline_arg,
                           "trials": trials})
    return 0


if __name__ == "__main__":
    sys.exit(main())
