"""What the service expands: ClassifyText, by its schema-transform identifier or its fully qualified
names, and nothing else. Checked on the raw request, before Beam decodes anything in it."""
from __future__ import annotations

from apache_beam.coders import RowCoder
from apache_beam.portability.api import external_transforms_pb2

from .safe_rows import UntrustedRowError, check_row
from .schema import FQN_URN, IDENTIFIER, SCHEMATRANSFORM_URN

# What Java's PythonExternalTransform may name. Exact names: no globs, no callables, no source code.
ALLOWED_FQNS = frozenset({"beam_tensorrt.ClassifyText", "beam_tensorrt.classify_text.ClassifyText"})
# Beam's own name filter for fully qualified names, set while the service runs: a second fence.
FQN_FILTER_GLOB = "beam_tensorrt.*ClassifyText"


class NotAllowed(ValueError):
    pass


def check_allowed(spec) -> str:
    """The name of what a request's transform spec asks to expand, or NotAllowed with the reason."""
    if spec.urn == SCHEMATRANSFORM_URN:
        payload = external_transforms_pb2.SchemaTransformPayload()
        try:
            payload.ParseFromString(spec.payload)
        except Exception as e:
            raise NotAllowed(f"malformed SchemaTransformPayload: {e}") from None
        if payload.identifier != IDENTIFIER:
            raise NotAllowed(f"schema transform {payload.identifier!r} is not served here; "
                             f"this service offers only {IDENTIFIER!r}")
        try:
            check_row(payload.configuration_schema, payload.configuration_row)
        except UntrustedRowError as e:
            raise NotAllowed(f"malformed configuration row: {e}") from None
        return IDENTIFIER
    if spec.urn == FQN_URN:
        payload = external_transforms_pb2.ExternalConfigurationPayload()
        try:
            payload.ParseFromString(spec.payload)
            check_row(payload.schema, payload.payload)  # before any native decoder sees the bytes
            row = RowCoder(payload.schema).decode(payload.payload)
            constructor = row.constructor
        except Exception as e:
            raise NotAllowed(f"malformed fully-qualified-name payload: {e}") from None
        if constructor not in ALLOWED_FQNS:
            raise NotAllowed(f"{constructor!r} is not allowed here; this service expands only "
                             f"{', '.join(sorted(ALLOWED_FQNS))}")
        return constructor
    raise NotAllowed(f"transform URN {spec.urn!r} is not served here; this service expands only "
                     f"{SCHEMATRANSFORM_URN} (identifier {IDENTIFIER}) and {FQN_URN} "
                     f"({', '.join(sorted(ALLOWED_FQNS))})")
