"""The expansion service under TLS, load, malformed requests and SIGTERM during load: a real subprocess
on loopback, real gRPC clients, bounded in count and time."""
import datetime
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from apache_beam.portability.api import beam_expansion_api_pb2, beam_expansion_api_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from beam_tensorrt.expansion.schema import IDENTIFIER
from service_fixture import start_service


def make_pki(tmp_path):
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(subject, key, issuer, issuer_key, ca=False, san=None):
        b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    def write(path, obj, key=False):
        data = (obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()) if key else obj.public_bytes(serialization.Encoding.PEM))
        path.write_bytes(data)
        return str(path)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert("test-ca", ca_key, "test-ca", ca_key, ca=True)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = cert("localhost", srv_key, "test-ca", ca_key,
               san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cli_key = ec.generate_private_key(ec.SECP256R1())
    cli = cert("client", cli_key, "test-ca", ca_key)
    other_key = ec.generate_private_key(ec.SECP256R1())  # an unknown CA signs the rogue client
    rogue = cert("rogue", cli_key, "other-ca", other_key)
    return {"ca": write(tmp_path / "ca.pem", ca), "cert": write(tmp_path / "srv.pem", srv),
            "key": write(tmp_path / "srv.key", srv_key, key=True), "client_cert": write(tmp_path / "cli.pem", cli),
            "client_key": write(tmp_path / "cli.key", cli_key, key=True), "rogue_cert": write(tmp_path / "rogue.pem", rogue)}


def health(channel, timeout=5):
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout).status


def read(path):
    return open(path, "rb").read()


def test_tls_and_mutual_tls_accept_the_right_clients_only(tmp_path):
    pki = make_pki(tmp_path)
    svc = start_service(tmp_path, "--tls-cert", pki["cert"], "--tls-key", pki["key"])
    try:
        creds = grpc.ssl_channel_credentials(root_certificates=read(pki["ca"]))
        assert health(grpc.secure_channel(svc.address, creds)) == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError):  # a plaintext client is refused
            health(grpc.insecure_channel(svc.address), timeout=3)
    finally:
        assert svc.stop() == 0
    svc = start_service(tmp_path, "--tls-cert", pki["cert"], "--tls-key", pki["key"], "--tls-client-ca", pki["ca"])
    try:
        good = grpc.ssl_channel_credentials(read(pki["ca"]), read(pki["client_key"]), read(pki["client_cert"]))
        assert health(grpc.secure_channel(svc.address, good)) == health_pb2.HealthCheckResponse.SERVING
        assert "mutual TLS" in svc.log()
        for creds in (grpc.ssl_channel_credentials(read(pki["ca"])),  # no client certificate
                      grpc.ssl_channel_credentials(read(pki["ca"]), read(pki["client_key"]), read(pki["rogue_cert"]))):
            with pytest.raises(grpc.RpcError):
                health(grpc.secure_channel(svc.address, creds), timeout=3)
    finally:
        assert svc.stop() == 0


LOAD_CLIENT = r"""
import sys, time, json, grpc
from concurrent.futures import ThreadPoolExecutor
from apache_beam.portability.api import beam_expansion_api_pb2 as pb, beam_expansion_api_pb2_grpc as pbg, beam_runner_api_pb2 as rpb
addr, calls = sys.argv[1], int(sys.argv[2])
stub = pbg.ExpansionServiceStub(grpc.insecure_channel(addr))
def one(i):
    t = time.perf_counter()
    try:
        if i % 2:
            r = stub.DiscoverSchemaTransform(pb.DiscoverSchemaTransformRequest(), timeout=60)
            ok = bool(r.schema_transform_configs)
        else:
            req = pb.ExpansionRequest(transform=rpb.PTransform(unique_name="x", spec=rpb.FunctionSpec(urn="beam:transforms:python:pickled", payload=b"x")), namespace="n")
            r = stub.Expand(req, timeout=60)
            ok = r.error.startswith("refused")
    except grpc.RpcError as e:
        ok = False
    return ok, time.perf_counter() - t
with ThreadPoolExecutor(calls) as ex:
    results = list(ex.map(one, range(calls)))
print(json.dumps([[ok, dt] for ok, dt in results]))
"""


def run_load(address, processes=2, calls=120):
    procs = [subprocess.Popen([sys.executable, "-c", LOAD_CLIENT, address, str(calls)], stdout=subprocess.PIPE, text=True)
             for _ in range(processes)]
    import json

    results = []
    for p in procs:
        out, _ = p.communicate(timeout=180)
        results += json.loads(out) if out.strip() else [[False, 0.0]] * calls
    return results


def test_load_several_client_processes_zero_failures(tmp_path):
    svc = start_service(tmp_path)
    try:
        results = run_load(svc.address, processes=2, calls=120)  # 240 concurrent calls
        latencies = sorted(dt for _, dt in results)
        p99 = latencies[int(0.99 * (len(latencies) - 1))]
        failures = sum(1 for ok, _ in results if not ok)
        print(f"load: {len(results)} concurrent Expand/DiscoverSchemaTransform calls from 2 processes, "
              f"{failures} failures, p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
        assert len(results) == 240 and failures == 0
    finally:
        assert svc.stop() == 0


def test_sigterm_during_load_drains_and_exits_cleanly(tmp_path):
    svc = start_service(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", LOAD_CLIENT, svc.address, "50"], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    time.sleep(1.5)  # clients importing Beam and calling
    assert svc.stop(signal.SIGTERM, timeout=60) == 0
    for p in procs:
        p.communicate(timeout=120)
    log = svc.log()
    assert "received SIGTERM" in log and "draining" in log and "stopped" in log


def random_request(rng: random.Random) -> bytes:
    from apache_beam.portability.api import beam_runner_api_pb2 as rpb
    from apache_beam.portability.api import external_transforms_pb2 as xpb

    kind = rng.randrange(6)
    if kind == 0:  # random bytes
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 200)))
    urn = rng.choice(["beam:expansion:payload:schematransform:v1", "beam:transforms:python:fully_qualified_named",
                      "beam:transforms:python:pickled", "", "x" * rng.randrange(1, 300)])
    if kind == 1:  # valid envelope, garbage payload
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300)))
    elif kind == 2:  # schema-transform payload with our identifier but a broken row
        payload = xpb.SchemaTransformPayload(identifier="beam:schematransform:beam_tensorrt:classify_text:v1",
                                             configuration_row=bytes(rng.getrandbits(8) for _ in range(40))).SerializeToString()
    else:  # fully-qualified-name payload with a broken schema/row
        payload = xpb.ExternalConfigurationPayload(payload=bytes(rng.getrandbits(8) for _ in range(50))).SerializeToString()
    request = beam_expansion_api_pb2.ExpansionRequest(
        transform=rpb.PTransform(unique_name="f", spec=rpb.FunctionSpec(urn=urn, payload=payload)), namespace="fuzz")
    data = request.SerializeToString()
    if kind == 4 and data:  # truncated
        data = data[: rng.randrange(len(data))]
    return data


def test_fuzzed_requests_get_errors_never_a_crash_or_hang(tmp_path):
    svc = start_service(tmp_path)
    rng = random.Random(1234)
    channel = grpc.insecure_channel(svc.address, options=[("grpc.max_send_message_length", 64 << 20)])
    # Raw bytes, as a hostile client would send them: the server must parse (or refuse) them itself.
    expand = channel.unary_unary("/org.apache.beam.model.expansion.v1.ExpansionService/Expand",
                                 request_serializer=lambda b: b, response_deserializer=lambda b: b)
    n, answered, rpc_errors = 4_000, 0, 0
    start = time.monotonic()
    try:
        def call(i):
            data = random_request(random.Random(rng.random() + i))
            if i % 1000 == 999:
                data = b"\x0a" + b"\xff" * (40 << 20)  # oversized: over the 32 MiB limit
            try:
                response = beam_expansion_api_pb2.ExpansionResponse.FromString(expand(data, timeout=30))
                # Answered: then refused with a reason; nothing malformed is ever expanded.
                assert response.error and not response.transform.spec.urn, response
                return "refused"
            except grpc.RpcError as e:
                assert e.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED,
                                    grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), e
                return "rpc_error"

        with ThreadPoolExecutor(16) as ex:
            outcomes = list(ex.map(call, range(n)))
        answered, rpc_errors = outcomes.count("refused"), outcomes.count("rpc_error")
        assert svc.proc.poll() is None, "service died"
        # ...and still answers a valid request
        stub = beam_expansion_api_pb2_grpc.ExpansionServiceStub(channel)
        configs = stub.DiscoverSchemaTransform(beam_expansion_api_pb2.DiscoverSchemaTransformRequest(), timeout=30)
        assert IDENTIFIER in configs.schema_transform_configs
        print(f"fuzz: {n} malformed requests in {time.monotonic() - start:.0f} s: {answered} error responses, "
              f"{rpc_errors} rejected by gRPC; service alive and answering")
        # Both ways of saying no were exercised: the service's own refusals and gRPC's (oversized).
        assert answered > n // 2 and rpc_errors >= n // 1000
    finally:
        assert svc.stop() == 0


def test_config_rows_with_pickled_python_types_are_refused_before_decoding(tmp_path):
    """Beam decodes its 'pythonsdk_any' logical type by unpickling: a client must not get that far."""
    import apache_beam as beam
    from apache_beam.coders import RowCoder
    from apache_beam.portability.api import beam_runner_api_pb2 as rpb
    from apache_beam.portability.api import external_transforms_pb2 as xpb
    from apache_beam.typehints.schemas import named_fields_to_schema

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    schema = named_fields_to_schema([("constructor", str), ("kwargs", named_fields_to_schema([("x", object)]))])
    # Hand-encode: RowCoder for 'Any' would pickle Exploit, which is exactly the bytes an attacker sends.
    inner_schema = schema.fields[1].type.row_type.schema
    inner = RowCoder(inner_schema).encode(beam.Row(x=Exploit()))
    del inner  # encoding alone must not create the marker either
    assert not marker.exists()
    svc = start_service(tmp_path)
    try:
        any_row = beam.Row(constructor="beam_tensorrt.ClassifyText", kwargs=beam.Row(x=Exploit()))
        payload = xpb.ExternalConfigurationPayload(schema=schema, payload=RowCoder(schema).encode(any_row))
        request = beam_expansion_api_pb2.ExpansionRequest(
            transform=rpb.PTransform(unique_name="t", spec=rpb.FunctionSpec(
                urn="beam:transforms:python:fully_qualified_named", payload=payload.SerializeToString())),
            namespace="n")
        stub = beam_expansion_api_pb2_grpc.ExpansionServiceStub(grpc.insecure_channel(svc.address))
        response = stub.Expand(request, timeout=30)
        assert response.error.startswith("refused") and "does not accept" in response.error
        assert not marker.exists()
    finally:
        svc.stop()


def test_expansions_have_a_server_side_deadline(tmp_path):
    from apache_beam.transforms.fully_qualified_named_transform import FullyQualifiedNamedTransform
    from apache_beam.portability.api import beam_runner_api_pb2 as rpb

    urn, payload = FullyQualifiedNamedTransform("beam_tensorrt.ClassifyText", (), {}).to_runner_api_parameter(None)
    request = beam_expansion_api_pb2.ExpansionRequest(
        transform=rpb.PTransform(unique_name="t", spec=rpb.FunctionSpec(urn=urn, payload=payload.SerializeToString())),
        namespace="n")
    svc = start_service(tmp_path, "--max-expansion-seconds", "0.001")
    try:
        stub = beam_expansion_api_pb2_grpc.ExpansionServiceStub(grpc.insecure_channel(svc.address))
        response = stub.Expand(request, timeout=30)
        assert "exceeded its deadline of 0.0 s" in response.error
        configs = stub.DiscoverSchemaTransform(beam_expansion_api_pb2.DiscoverSchemaTransformRequest(), timeout=10)
        assert IDENTIFIER in configs.schema_transform_configs  # the service still answers
    finally:
        assert svc.stop() == 0


def test_a_service_killed_mid_expansion_fails_the_call_and_a_restarted_one_expands(tmp_path):
    """kill -9 while a pipeline's expansion request is in flight: the pipeline's construction fails
    with gRPC's UNAVAILABLE naming the connection, not a hang; the service restarted on its port
    expands the same transform and the pipeline runs."""
    import os
    import threading

    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to
    from apache_beam.transforms.external import SchemaAwareExternalTransform

    rows = [beam.Row(id=1, text="A beautiful, moving film."), beam.Row(id=2, text="A boring, stupid mess.")]

    def pipeline(address: str):
        p = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
        out = p | beam.Create(rows) | SchemaAwareExternalTransform(IDENTIFIER, address,
                                                                   rearrange_based_on_discovery=True)
        assert_that(out | beam.Map(lambda r: (r.id, r.label)), equal_to([(1, "POSITIVE"), (2, "NEGATIVE")]))
        return p

    svc = start_service(tmp_path)
    os.kill(svc.proc.pid, signal.SIGSTOP)  # the request reaches a service that is not answering yet
    failed: list = []

    def construct():
        try:
            pipeline(svc.address)
        except Exception as e:
            failed.append(e)

    client = threading.Thread(target=construct)
    client.start()
    time.sleep(2)
    assert client.is_alive()  # in flight
    svc.proc.kill()
    svc.proc.wait(timeout=30)
    client.join(timeout=60)
    assert not client.is_alive() and failed, "the client hung on a dead service"
    assert isinstance(failed[0], grpc.RpcError) and failed[0].code() == grpc.StatusCode.UNAVAILABLE, failed[0]
    restarted = start_service(tmp_path, "--port", str(svc.port))
    try:
        pipeline(restarted.address).run().wait_until_finish()
    finally:
        restarted.stop()
