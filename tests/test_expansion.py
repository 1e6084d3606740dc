"""The expansion service, as clients see it: a real subprocess on loopback, real Beam clients."""
import signal

import apache_beam as beam
import grpc
import pytest
from apache_beam.coders import RowCoder
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability.api import (beam_expansion_api_pb2, beam_expansion_api_pb2_grpc,
                                         beam_runner_api_pb2, external_transforms_pb2)
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.external import ExternalTransform, SchemaAwareExternalTransform
from apache_beam.transforms.fully_qualified_named_transform import FullyQualifiedNamedTransform
from apache_beam.typehints.schemas import named_fields_to_schema

from beam_tensorrt.config import config_fields
from beam_tensorrt.expansion.schema import FQN_URN, IDENTIFIER, SCHEMATRANSFORM_URN
from service_fixture import start_service

ROWS = [beam.Row(id=1, text="A beautiful, moving film."), beam.Row(id=2, text="A boring, stupid mess.")]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    svc = start_service(tmp_path_factory.mktemp("serve"))
    yield svc
    svc.stop()


def listening_addresses(port: int) -> set:
    """Local addresses in LISTEN state on ``port``, from the kernel's socket tables."""
    import socket
    import struct

    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:
                continue
            raw = bytes.fromhex(addr_hex)
            if family == socket.AF_INET:
                found.add(socket.inet_ntop(family, struct.pack("<I", struct.unpack(">I", raw)[0])))
            else:
                found.add(socket.inet_ntop(family, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))))
    return found


def stub(service):
    return beam_expansion_api_pb2_grpc.ExpansionServiceStub(grpc.insecure_channel(service.address))


def expand_raw(service, urn: str, payload: bytes) -> beam_expansion_api_pb2.ExpansionResponse:
    request = beam_expansion_api_pb2.ExpansionRequest(
        transform=beam_runner_api_pb2.PTransform(unique_name="t", spec=beam_runner_api_pb2.FunctionSpec(urn=urn, payload=payload)),
        namespace="test")
    return stub(service).Expand(request, timeout=60)


def schematransform_payload(fields: list, values: dict) -> bytes:
    schema = named_fields_to_schema(fields)
    row = beam.Row(**values)
    return external_transforms_pb2.SchemaTransformPayload(
        identifier=IDENTIFIER, configuration_schema=schema,
        configuration_row=RowCoder(schema).encode(row)).SerializeToString()


def test_discovery_through_beams_client_lists_transform_and_schema(service):
    configs = {c.identifier: c for c in SchemaAwareExternalTransform.discover(service.address)}
    assert list(configs) == [IDENTIFIER]
    config = configs[IDENTIFIER]
    fields = config.configuration_schema._fields
    assert list(fields) == [f.name for f in config_fields()]
    assert config.inputs == ["input"] and config.outputs == ["output"]
    assert "Classify" in config.description


def test_discovery_schema_is_typed_and_documented(service):
    response = stub(service).DiscoverSchemaTransform(beam_expansion_api_pb2.DiscoverSchemaTransformRequest(), timeout=30)
    schema = response.schema_transform_configs[IDENTIFIER].config_schema
    by_name = {f.name: f for f in schema.fields}
    assert by_name["model"].type.atomic_type == by_name["text_field"].type.atomic_type  # STRING
    assert by_name["max_seq_len"].type.atomic_type != by_name["model"].type.atomic_type  # INT64
    assert all(f.type.nullable and f.description for f in schema.fields)
    assert by_name["error_handling"].type.row_type.schema.fields[0].name == "output"


def test_python_pipeline_through_the_service(service):
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        out = (p | beam.Create(ROWS)
                 | SchemaAwareExternalTransform(IDENTIFIER, service.address, rearrange_based_on_discovery=True,
                                                max_batch_size=8, probabilities_field="probs"))
        assert_that(out | beam.Map(lambda r: (r.id, r.label, len(r.probs))),
                    equal_to([(1, "POSITIVE", 2), (2, "NEGATIVE", 2)]))
    assert "expanded " + IDENTIFIER in service.log()


def test_fully_qualified_name_path_for_classify_text_is_allowed(service):
    urn, payload = FullyQualifiedNamedTransform("beam_tensorrt.ClassifyText", (), {"max_batch_size": 4}).to_runner_api_parameter(None)
    assert urn == FQN_URN
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        out = p | beam.Create(ROWS) | ExternalTransform(urn, payload.SerializeToString(), service.address)
        assert_that(out | beam.Map(lambda r: r.label), equal_to(["POSITIVE", "NEGATIVE"]))


@pytest.mark.parametrize("constructor", ["os.system", "__callable__", "__constructor__", "beam_tensorrt.cli.main",
                                         "apache_beam.Map", "beam_tensorrt.ClassifyTextX"])
def test_non_allow_listed_names_are_refused(service, constructor):
    _, payload = FullyQualifiedNamedTransform(constructor, (), {"source": "import os"}).to_runner_api_parameter(None)
    response = expand_raw(service, FQN_URN, payload.SerializeToString())
    assert response.error.startswith("refused:") and "not allowed" in response.error
    assert "beam_tensorrt.ClassifyText" in response.error


def test_unknown_urns_and_identifiers_are_refused(service):
    response = expand_raw(service, "beam:transforms:python:pickled", b"\x80\x04anything")
    assert "refused" in response.error and "not served here" in response.error
    other = external_transforms_pb2.SchemaTransformPayload(identifier="beam:schematransform:org.apache.beam:kafka_read:v1")
    response = expand_raw(service, SCHEMATRANSFORM_URN, other.SerializeToString())
    assert "refused" in response.error and "kafka_read" in response.error


@pytest.mark.parametrize("fields, values, field", [
    ([("modle", str)], {"modle": "x"}, "modle"),                       # unknown field (a client not using discovery)
    ([("max_seq_len", str)], {"max_seq_len": "128"}, "max_seq_len"),   # wrong type
    ([("model", str)], {"model": "/no/such/artifact"}, "model"),        # missing model path
    ([("backend", str)], {"backend": "gpu-please"}, "backend"),
    ([("max_batch_size", int)], {"max_batch_size": 0}, "max_batch_size"),
])
def test_bad_config_fails_at_expansion_naming_the_field(service, fields, values, field):
    response = expand_raw(service, SCHEMATRANSFORM_URN, schematransform_payload(fields, values))
    first_line = response.error.splitlines()[0]
    assert "ConfigError" in first_line and f"'{field}'" in first_line, response.error[:500]


def test_bad_config_through_beams_client_is_a_construction_error(service):
    with pytest.raises(Exception, match="'model'.*does_not_exist"):
        p = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
        _ = p | beam.Create(ROWS) | SchemaAwareExternalTransform(
            IDENTIFIER, service.address, rearrange_based_on_discovery=True, model="/does_not_exist")


def test_health_service_answers_serving(service):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(grpc.insecure_channel(service.address))
    for name in ("", "org.apache.beam.model.expansion.v1.ExpansionService"):
        assert health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status == \
            health_pb2.HealthCheckResponse.SERVING


def test_binds_loopback_by_default_and_sigterm_exits_cleanly(tmp_path):
    svc = start_service(tmp_path)
    # gRPC may use a dual-stack socket: '::ffff:127.0.0.1' is the same loopback address.
    assert {a.removeprefix("::ffff:") for a in listening_addresses(svc.port)} == {"127.0.0.1"}
    assert svc.stop(signal.SIGTERM) == 0
    assert "shutting down" in svc.log() and "stopped" in svc.log()


def test_a_loopback_client_can_use_the_service(service):
    """A Python client whose own environment is LOOPBACK: its options must not leak into what the
    service expands (Beam lays client options over the service's)."""
    options = PipelineOptions(["--runner=FnApiRunner", "--environment_type=LOOPBACK"])
    with beam.Pipeline(options=options) as p:
        out = (p | beam.Create(ROWS)
                 | SchemaAwareExternalTransform(IDENTIFIER, service.address, rearrange_based_on_discovery=True))
        assert_that(out | beam.Map(lambda r: (r.id, r.label)), equal_to([(1, "POSITIVE"), (2, "NEGATIVE")]))


PRELOADED = "loaded before the job by the worker pool"


