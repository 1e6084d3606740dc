"""Check an untrusted, RowCoder-encoded configuration row in pure Python before Beam decodes it.

Why: Beam's compiled RowCoder trusts its input. Fuzzing this service found that a garbage row
under an empty schema crashes the process (SIGSEGV in the Cython decoder), and a schema with
Beam's ``pythonsdk_any`` logical type makes Beam *unpickle* client bytes. So the service accepts
only plain types (strings, integers, floats, booleans, bytes, nested rows), walks every byte with
bounds checks here, and only then lets Beam decode the row.
"""
from __future__ import annotations

import struct

from apache_beam.portability.api import schema_pb2

MAX_DEPTH = 4
MAX_FIELDS = 256
MAX_STRING = 1 << 20

_FIXED = {schema_pb2.INT16: 2, schema_pb2.BYTE: 1, schema_pb2.FLOAT: 4, schema_pb2.DOUBLE: 8, schema_pb2.BOOLEAN: 1}
_VARINT = {schema_pb2.INT64, schema_pb2.INT32}
_LENGTH_PREFIXED = {schema_pb2.STRING, schema_pb2.BYTES}


class UntrustedRowError(ValueError):
    pass


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise UntrustedRowError(f"row ends early (needs {n} bytes at offset {self.pos}, has {len(self.data)})")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def varint(self) -> int:
        result, shift = 0, 0
        for _ in range(10):
            byte = self.take(1)[0]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
        raise UntrustedRowError("varint longer than 10 bytes")


def check_schema(schema: schema_pb2.Schema, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise UntrustedRowError(f"rows nested deeper than {MAX_DEPTH}")
    if len(schema.fields) > MAX_FIELDS:
        raise UntrustedRowError(f"more than {MAX_FIELDS} fields")
    positions = sorted(f.encoding_position for f in schema.fields) if schema.encoding_positions_set else None
    if positions is not None and positions != list(range(len(schema.fields))):
        raise UntrustedRowError("encoding positions are not a permutation of the fields")
    for field in schema.fields:
        kind = field.type.WhichOneof("type_info")
        if kind == "row_type":
            check_schema(field.type.row_type.schema, depth + 1)
        elif kind != "atomic_type" or field.type.atomic_type not in (_FIXED.keys() | _VARINT | _LENGTH_PREFIXED):
            raise UntrustedRowError(f"field {field.name!r} has a type this service does not accept "
                                    f"({kind}); configuration fields are strings, numbers, booleans or rows")


def check_row(schema: schema_pb2.Schema, data: bytes) -> None:
    """Raise UntrustedRowError unless ``data`` is exactly one well-formed row of ``schema``."""
    check_schema(schema)
    reader = _Reader(data)
    _check_row(schema, reader)
    if reader.pos != len(data):
        raise UntrustedRowError(f"{len(data) - reader.pos} unexpected bytes after the row")


def _check_row(schema: schema_pb2.Schema, r: _Reader) -> None:
    n = r.varint()
    if n != len(schema.fields):
        raise UntrustedRowError(f"row has {n} fields, its schema {len(schema.fields)}")
    null_bytes = r.varint()
    if null_bytes > (n + 7) // 8:
        raise UntrustedRowError("null bitmap longer than the field count")
    bitmap = r.take(null_bytes)
    fields = list(schema.fields)
    if schema.encoding_positions_set:
        fields.sort(key=lambda f: f.encoding_position)
    for i, field in enumerate(schema.fields):
        if i // 8 < len(bitmap) and bitmap[i // 8] >> (i % 8) & 1 and not field.type.nullable:
            raise UntrustedRowError(f"null for non-nullable field {field.name!r}")
    nulls = {schema.fields[i].name for i in range(n) if i // 8 < len(bitmap) and bitmap[i // 8] >> (i % 8) & 1}
    for field in fields:
        if field.name in nulls:
            continue
        ft = field.type
        if ft.WhichOneof("type_info") == "row_type":
            _check_row(ft.row_type.schema, r)
        elif ft.atomic_type in _FIXED:
            value = r.take(_FIXED[ft.atomic_type])
            if ft.atomic_type == schema_pb2.BOOLEAN and value[0] > 1:
                raise UntrustedRowError(f"field {field.name!r}: boolean byte {value[0]}")
            if ft.atomic_type == schema_pb2.DOUBLE:
                struct.unpack(">d", value)
        elif ft.atomic_type in _VARINT:
            r.varint()
        else:
            size = r.varint()
            if size > MAX_STRING:
                raise UntrustedRowError(f"field {field.name!r} is {size} bytes (limit {MAX_STRING})")
            raw = r.take(size)
            if ft.atomic_type == schema_pb2.STRING:
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise UntrustedRowError(f"field {field.name!r} is not UTF-8: {e}") from None
