"""The URN constructors the service registers: how an expansion request becomes ClassifyText."""
from __future__ import annotations

import apache_beam as beam
from apache_beam.portability.api import external_transforms_pb2
from apache_beam.transforms.ptransform import PTransform

from ..classify_text import ClassifyText
from .schema import SCHEMATRANSFORM_URN, decode_payload


class ClassifyTextSchemaTransform(beam.PTransform):
    """ClassifyText with schema-transform outputs: always a dict with 'output' (and the error output)."""

    def __init__(self, **config):
        super().__init__()
        self._inner = ClassifyText(**config)
        # Its output always crosses to the client's environment, a row at a time.
        self._inner.rows_out_one_at_a_time = True

    def expand(self, pcoll):
        result = pcoll | "ClassifyText" >> self._inner
        return result if isinstance(result, dict) else {"output": result}


def _from_schematransform_payload(unused_proto, payload, unused_context) -> ClassifyTextSchemaTransform:
    return ClassifyTextSchemaTransform(**decode_payload(payload))


def register() -> None:
    """Idempotent: make this process's Beam expand our schema-transform payloads."""
    PTransform.register_urn(SCHEMATRANSFORM_URN, external_transforms_pb2.SchemaTransformPayload,
                            _from_schematransform_payload)
