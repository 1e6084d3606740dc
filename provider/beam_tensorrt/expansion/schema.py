"""ClassifyText as a schema transform: its identifier, published config schema, and payload decoding."""
from __future__ import annotations

from typing import Any, Optional

from apache_beam.coders import RowCoder
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_expansion_api_pb2, external_transforms_pb2, schema_pb2
from apache_beam.typehints.schemas import named_fields_to_schema

from ..config import config_fields, field_type
from ..errors import ConfigError

IDENTIFIER = "beam:schematransform:beam_tensorrt:classify_text:v1"
SCHEMATRANSFORM_URN = common_urns.schematransform_based_expand.urn
FQN_URN = "beam:transforms:python:fully_qualified_named"
DESCRIPTION = (
    "Classify the text field of each input row with a BERT-family model (TensorRT, PyTorch CUDA or "
    "ONNX Runtime). Output rows keep every input field and add the label and its score. Set "
    "error_handling.output to route rows that cannot be classified to a second output "
    "(fields: element, msg, stack).")


def config_schema() -> schema_pb2.Schema:
    """Every config field, nullable (absent means the default), with its description."""
    fields: list[tuple[str, Any]] = []
    docs: dict[str, str] = {}
    for f in config_fields():
        base, _ = field_type(f)
        fields.append((f.name, Optional[base]))
        docs[f.name] = f.metadata["doc"]
    schema = named_fields_to_schema(fields)
    for field in schema.fields:
        field.description = docs[field.name]
    return schema


def schema_transform_config() -> beam_expansion_api_pb2.SchemaTransformConfig:
    return beam_expansion_api_pb2.SchemaTransformConfig(
        config_schema=config_schema(), input_pcollection_names=["input"],
        output_pcollection_names=["output"], description=DESCRIPTION)


def row_to_kwargs(row: Any) -> dict[str, Any]:
    """A decoded config row -> ClassifyText kwargs; null fields fall back to defaults."""
    return {name: value for name, value in row._asdict().items() if value is not None}


def decode_payload(payload: external_transforms_pb2.SchemaTransformPayload) -> dict[str, Any]:
    if payload.identifier != IDENTIFIER:
        raise ConfigError("identifier", f"{payload.identifier!r} is not served here; this service offers {IDENTIFIER!r}")
    try:
        row = RowCoder(payload.configuration_schema).decode(payload.configuration_row)
    except Exception as e:  # a row that does not match its own schema
        raise ConfigError("configuration_row", f"cannot be decoded with its schema: {e}") from None
    return row_to_kwargs(row)
