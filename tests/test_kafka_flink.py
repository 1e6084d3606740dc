"""Kafka in, ClassifyText, Kafka out, unbounded on Flink: a real broker, Beam 2.62's KafkaIO
(scripts/kafka_io.py --flink: Flink runs the Kafka source itself and checkpoints it), the project's
Flink job server with those jars, and examples/kafka_classify.py and
yaml_pipelines/classify_kafka.yaml as streaming jobs with checkpoints. Messages sent before a job
starts and while it runs all come out, each once, on the labels or the errors topic; then the job is
cancelled."""
import json
import logging
import shutil
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from test_kafka_io import SENT, TEXTS, YAML_SENT, read, script, send

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("java") is None or shutil.which("mvn") is None,
                                 reason="Kafka, Beam's Kafka IO and Flink need a JDK and Maven on PATH")]
DEADLINE = 300


class FlinkLog(logging.Handler):
    """The job server's log lines (beam_tensorrt.flink logs them at DEBUG), kept for assertions."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    def completed_checkpoints(self, since: int = 0) -> int:
        """Checkpoints Flink completed, in the lines logged from line ``since`` on."""
        return sum("Completed checkpoint" in line for line in self.lines[since:])


@pytest.fixture(scope="module")
def flink_log():
    logger, handler = logging.getLogger("beam_tensorrt.flink"), FlinkLog()
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture(scope="module")
def services(tmp_path_factory, flink_log):
    """(broker address, Kafka IO expansion service, Flink job endpoint), started as docs/flink-and-kafka.md says."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from kafka_io import jars

    from beam_tensorrt.runners.flink import FlinkJobServer

    folder = tmp_path_factory.mktemp("kafka-flink")
    broker, io = str(folder / "broker"), str(folder / "io")
    server = FlinkJobServer(job_port=0, parallelism=2, extra_classpath=jars(flink=True),
                            artifacts_dir=str(folder / "artifacts"))
    try:
        started = script("kafka_broker", "start", "--dir", broker)
        assert started.returncode == 0, started.stderr
        expansion = script("kafka_io", "start", "--flink", "--dir", io)
        assert expansion.returncode == 0, expansion.stderr
        yield (started.stdout.split("listening on ")[1].split()[0],
               expansion.stdout.split("listening on ")[1].split()[0], server.start(timeout=600))
    finally:
        server.stop()
        script("kafka_io", "stop", "--dir", io)
        script("kafka_broker", "stop", "--dir", broker)


def job_service(endpoint: str):
    import grpc
    from apache_beam.portability.api import beam_job_api_pb2_grpc

    return beam_job_api_pb2_grpc.JobServiceStub(grpc.insecure_channel(endpoint))


def running_jobs(endpoint: str) -> list[str]:
    from apache_beam.portability.api import beam_job_api_pb2 as api

    return [j.job_id for j in job_service(endpoint).GetJobs(api.GetJobsRequest()).job_info
            if j.state == api.JobState.RUNNING]


def transform_urns(endpoint: str, job: str) -> set[str]:
    """The URNs of the job's transforms, as the job server received them (expanded)."""
    from apache_beam.portability.api import beam_job_api_pb2 as api

    pipeline = job_service(endpoint).GetPipeline(api.GetJobPipelineRequest(job_id=job)).pipeline
    return {t.spec.urn for t in pipeline.components.transforms.values()}


def cancel_jobs(endpoint: str) -> list[str]:
    """Cancel every running job of the job server; their states after."""
    from apache_beam.portability.api import beam_job_api_pb2 as api

    jobs = job_service(endpoint)
    running = running_jobs(endpoint)
    for job in running:
        jobs.Cancel(api.CancelJobRequest(job_id=job))
    deadline = time.monotonic() + 60
    states = []
    while time.monotonic() < deadline:
        states = [api.JobState.Enum.Name(jobs.GetState(api.GetJobStateRequest(job_id=j)).state) for j in running]
        if all(s in ("CANCELLED", "FAILED", "DONE") for s in states):
            break
        time.sleep(1)
    return states


def outputs(address: str, by: str = "input") -> dict:
    """What came out for each input key (the JSON's "key"), or with ``by="place"`` for each output
    Kafka key (the input's TOPIC/PARTITION/OFFSET), from both output topics (seen twice: both kept)."""
    out: dict = {}
    for topic in ("flink-labels", "flink-errors"):
        for key, value in read(address, topic):
            input_key = value["key"].encode() if value.get("key") is not None else None
            out.setdefault(input_key if by == "input" else key, []).append((topic, value))
    return out


def test_an_unbounded_job_on_flink_classifies_every_message_once(services, tmp_path):
    address, expansion, flink = services
    keys = sorted(SENT, key=lambda k: int(k))
    before, during = keys[:len(keys) // 2], keys[len(keys) // 2:]
    send(address, "flink-texts", {k: SENT[k] for k in before})
    job = subprocess.Popen(
        [sys.executable, "examples/kafka_classify.py", "--bootstrap-servers", address, "--kafka-io", expansion,
         "--input-topic", "flink-texts", "--output-topic", "flink-labels", "--errors-topic", "flink-errors",
         "--max-batch-size", "16", "--", "--runner=PortableRunner", f"--job_endpoint={flink}",
         "--environment_type=LOOPBACK", "--streaming", "--checkpointing_interval=2000"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=open(tmp_path / "job.log", "w"), text=True)
    try:
        deadline = time.monotonic() + DEADLINE
        while len(outputs(address)) < len(before) and time.monotonic() < deadline and job.poll() is None:
            time.sleep(2)
        first = outputs(address)
        assert set(first) == set(before), (len(first), (tmp_path / "job.log").read_text()[-3000:])
        send(address, "flink-texts", {k: SENT[k] for k in during})  # the running job picks these up too
        while len(outputs(address)) < len(keys) and time.monotonic() < deadline and job.poll() is None:
            time.sleep(2)
        assert job.poll() is None, (tmp_path / "job.log").read_text()[-3000:]  # unbounded: still running
        [running] = running_jobs(flink)
        assert "beam:transform:read:v1" in transform_urns(flink, running)  # Flink's own Kafka source
        states = cancel_jobs(flink)
        assert states and all(s == "CANCELLED" for s in states), states
    finally:
        job.kill()
        job.wait(timeout=60)
    out = outputs(address)
    assert sorted(out) == sorted(keys)  # nothing lost
    assert all(len(v) == 1 for v in out.values()), {k: v for k, v in out.items() if len(v) > 1}  # nor doubled
    # Each output keyed by its input's place in the topic (one partition: offsets in the order sent).
    sent = before + during
    placed = outputs(address, by="place")
    assert sorted(placed) == sorted(f"flink-texts/0/{i}".encode() for i in range(len(sent)))
    assert all(placed[f"flink-texts/0/{i}".encode()][0][1]["key"] == key.decode() for i, key in enumerate(sent))
    for key, [(topic, value)] in out.items():
        if key in (b"40", b"41", b"42"):  # empty, not UTF-8, and no value (a tombstone)
            assert topic == "flink-errors" and value["msg"]
        else:
            text = SENT[key].decode()
            assert topic == "flink-labels" and value["text"] == text and text in TEXTS
            assert value["label"] == ("POSITIVE" if TEXTS.index(text) % 2 == 0 else "NEGATIVE")


def test_the_yaml_pipeline_runs_unbounded_on_flink_with_checkpoints(services, flink_log, tmp_path):
    """yaml_pipelines/classify_kafka.yaml, as docs/flink-and-kafka.md runs it on Flink: messages sent before and while
    it runs each come out once (the YAML writes values only: texts and labels are compared), Flink
    runs the Kafka source and completes checkpoints."""
    address, expansion, flink = services
    first = dict(YAML_SENT)
    during = {f"d{i}".encode(): TEXTS[i % 4].encode() for i in range(8)}
    send(address, "flink-yaml-texts", first)
    logged = len(flink_log.lines)  # the job's checkpoints are logged after this line
    variables = {"bootstrap_servers": address, "kafka_io": expansion, "input_topic": "flink-yaml-texts",
                 "output_topic": "flink-yaml-labels", "errors_topic": "flink-yaml-errors", "batch": 16}
    job = subprocess.Popen(
        [sys.executable, "-m", "beam_tensorrt.cli", "yaml", "yaml_pipelines/classify_kafka.yaml",
         f"--jinja_variables={json.dumps(variables)}", "--runner=PortableRunner", f"--job_endpoint={flink}",
         "--environment_type=LOOPBACK", "--streaming", "--checkpointing_interval=2000",
         "--max_bundle_time_mills=100", "--max_bundle_size=100"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "job.log", "w"))

    def out():
        return ([(r["text"], r["label"]) for _, r in read(address, "flink-yaml-labels")],
                [r["msg"] for _, r in read(address, "flink-yaml-errors")])

    valid = len(first) - 1  # one value is not UTF-8
    try:
        deadline = time.monotonic() + DEADLINE
        while len(out()[0]) < valid and time.monotonic() < deadline and job.poll() is None:
            time.sleep(2)
        assert len(out()[0]) == valid, (tmp_path / "job.log").read_text()[-3000:]
        send(address, "flink-yaml-texts", during)
        while len(out()[0]) < valid + len(during) and time.monotonic() < deadline and job.poll() is None:
            time.sleep(2)
        assert job.poll() is None, (tmp_path / "job.log").read_text()[-3000:]  # unbounded: still running
        [running] = running_jobs(flink)
        assert "beam:transform:read:v1" in transform_urns(flink, running)  # Flink's own Kafka source
        while not flink_log.completed_checkpoints(logged) and time.monotonic() < deadline:
            time.sleep(1)
        assert flink_log.completed_checkpoints(logged) >= 1
        states = cancel_jobs(flink)
        assert states and all(s == "CANCELLED" for s in states), states
    finally:
        job.kill()
        job.wait(timeout=60)
    labels, errors = out()
    expected = [v.decode() for v in list(first.values()) + list(during.values()) if v != b"caf\xe9 \xff"]
    assert sorted(labels) == sorted(
        (text, "POSITIVE" if TEXTS.index(text) % 2 == 0 else "NEGATIVE") for text in expected)  # none lost, none twice
    assert len(errors) == 1 and errors[0].startswith("value is not valid UTF-8")


def stamped(address: str, topic: str) -> dict:
    """Each message of ``topic`` as its output key (``TOPIC/PARTITION/OFFSET`` for an input topic's
    own place) -> its Kafka timestamp in seconds (the producer's send time)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=address, auto_offset_reset="earliest", consumer_timeout_ms=3000)
    out = {(m.key if topic.endswith(("labels", "errors")) else f"{m.topic}/{m.partition}/{m.offset}".encode()):
           m.timestamp / 1000 for m in consumer}
    consumer.close()
    return out


# The example's own latency options (bundles of 100 ms or 100 messages) took the median
# latency at 100 messages/s on the 2-core CPU box from 2.6-3.1 s under Flink's defaults to 0.5-1.0 s
# (3 trials each, bench.kafka_faults). At 20 messages/s the bound below sits between the two: it
# fails with Flink's defaults and leaves a loaded CI machine room.
STEADY_RATE, STEADY_MESSAGES, MEDIAN_BOUND_S = 20, 100, 1.5


def test_the_example_answers_within_its_latency_bound_at_a_steady_rate(services, tmp_path):
    """Messages sent one by one at a steady rate to a running job come out, each once, with a median
    latency (output Kafka timestamp - input Kafka timestamp) under ``MEDIAN_BOUND_S``."""
    from kafka import KafkaProducer

    address, expansion, flink = services
    job = subprocess.Popen(
        [sys.executable, "examples/kafka_classify.py", "--bootstrap-servers", address, "--kafka-io", expansion,
         "--input-topic", "steady-texts", "--output-topic", "steady-labels", "--errors-topic", "steady-errors",
         "--", "--runner=PortableRunner", f"--job_endpoint={flink}", "--environment_type=LOOPBACK", "--streaming",
         "--checkpointing_interval=2000"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "job.log", "w"))
    try:
        send(address, "steady-texts", {b"warm-up": TEXTS[0].encode()})  # the job is deployed and reading once out
        deadline = time.monotonic() + DEADLINE
        while not stamped(address, "steady-labels") and time.monotonic() < deadline and job.poll() is None:
            time.sleep(1)
        assert stamped(address, "steady-labels"), (tmp_path / "job.log").read_text()[-3000:]
        producer = KafkaProducer(bootstrap_servers=address, acks="all", linger_ms=0)
        start = time.monotonic()
        for i in range(STEADY_MESSAGES):
            time.sleep(max(0.0, start + i / STEADY_RATE - time.monotonic()))
            producer.send("steady-texts", key=f"s{i}".encode(), value=TEXTS[i % 4].encode())
        producer.flush(timeout=60)
        producer.close()
        while len(stamped(address, "steady-labels")) < STEADY_MESSAGES + 1 and time.monotonic() < deadline:
            time.sleep(2)
        assert job.poll() is None, (tmp_path / "job.log").read_text()[-3000:]
        cancel_jobs(flink)
    finally:
        job.kill()
        job.wait(timeout=60)
    sent, out = stamped(address, "steady-texts"), stamped(address, "steady-labels")
    assert sorted(out) == sorted(sent)  # every message out, on the labels topic, once
    latency = sorted(out[k] - sent[k] for k in sent if k != b"steady-texts/0/0")  # the warm-up message left out
    median = latency[len(latency) // 2]
    assert median < MEDIAN_BOUND_S, f"median {median:.2f} s, p90 {latency[len(latency) * 9 // 10]:.2f} s"
