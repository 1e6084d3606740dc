"""The main job's readers against the reference parsers, on generated files cut into many parts:
every record the reference reads comes out once, as a row with the reference's fields or as a
rejected row, whatever the part size (Python's ``csv`` for CSV/TSV, ``json`` for JSON lines).

The CLI runs the same readers; tests/test_cli_classify.py compares its output files too."""
import csv
import io
import json
import os

import pyarrow as pa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from beam_tensorrt.jobs import inputs
from beam_tensorrt.jobs import parts as job_parts

BOM = b"\xef\xbb\xbf"
csv.field_size_limit(1 << 30)  # the reference reads values of any length, as the job does
HEADER = ["id", "text", "note"]


def reference_delimited(data: bytes, fmt: str) -> tuple[list[str], list[list[bytes]]]:
    """(header, rows): Python's csv reader in the dialect the README documents; blank records are no
    rows; values as bytes (what is not UTF-8 kept as it was)."""
    if data.startswith(BOM):
        data = data[len(BOM):]
    text = io.StringIO(data.decode("utf-8", "surrogateescape"), newline="")
    reader = (csv.reader(text, delimiter="\t", quoting=csv.QUOTE_NONE) if fmt == "tsv" else csv.reader(text))
    records = [[v.encode("utf-8", "surrogateescape") for v in r] for r in reader]
    header = [v.decode("utf-8", "replace").strip() for v in records[0]]
    return header, [r for r in records[1:] if r]


def reference_json_lines(data: bytes) -> list[object]:
    """Each line (split at \\n) a row: the object ``json.loads`` reads, or None where it reads none."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    if lines and lines[0].startswith(BOM):
        lines[0] = lines[0][len(BOM):]
    rows = []
    for line in lines:
        try:
            obj = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            obj = None
        rows.append(obj if isinstance(obj, dict) else None)
    return rows


def read_all(path, fmt, part_bytes, scan_bytes=job_parts.SCAN_CHUNK):
    """Plan ``path`` with parts of ``part_bytes``, the planning pass reading ``scan_bytes`` at a time,
    and read every part: (source, parts, {row: fields}, {row: reason})."""
    default, job_parts.SCAN_CHUNK = job_parts.SCAN_CHUNK, scan_bytes
    try:
        src = inputs.source(str(path))
        parts = inputs.plan(src, part_bytes, 1)
    finally:
        job_parts.SCAN_CHUNK = default
    return (src, parts, *read_parts(src, parts, fmt))


def read_parts(src, parts, fmt):
    rows, bad = {}, {}
    for part in parts:
        tables, rejected = inputs.read_part(src, part, "text", 3)
        for r in rejected:
            assert r.row not in rows and r.row not in bad, f"row {r.row} twice"
            bad[r.row] = r.reason
        for table in tables:
            numbers = table.column(job_parts.ROW_COLUMN).to_pylist()
            data = table.drop_columns(list(job_parts.HIDDEN))
            if fmt in ("csv", "tsv"):
                data = pa.table({n: data.column(n).cast(pa.binary()) for n in data.column_names})
            for number, row in zip(numbers, data.to_pylist()):
                assert number not in rows and number not in bad, f"row {number} twice"
                rows[number] = row
    return rows, bad


# -- generated files -------------------------------------------------------------------------------

PIECES = st.sampled_from([b"a", b"word", b" ", b",", b"\t", b'"', b'""', b"\n", b"\r\n", b"\r", b"\xc3\xa9",
                          b"\xe6\x97\xa5", b"\xff", b"\xe9", b"\x00", b"x" * 300])
VALUES = st.lists(PIECES, max_size=6).map(b"".join)


@st.composite
def delimited_files(draw, fmt, min_columns=1):
    delimiter = "\t" if fmt == "tsv" else ","
    header = HEADER[:draw(st.integers(min_columns, 3))]
    head = (",".join(f'"{h}"' for h in header) if fmt == "csv" and draw(st.booleans())
            else delimiter.join(header)).encode()
    records = []
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["written", "written", "raw", "blank"]))
        if kind == "written":  # what a CSV writer makes of arbitrary values
            values = [draw(VALUES).decode("utf-8", "surrogateescape") for _ in range(draw(st.integers(1, 4)))]
            out = io.StringIO(newline="")
            if fmt == "tsv":
                values = [v.replace("\t", " ").replace("\r", " ").replace("\n", " ") for v in values]
                out.write("\t".join(values))
            else:
                csv.writer(out, lineterminator="").writerow(values)
            records.append(out.getvalue().encode("utf-8", "surrogateescape"))
        elif kind == "raw":  # bytes as they come: bare quotes, quotes after a closing quote, ...
            records.append(draw(VALUES))
        else:
            records.append(b"")
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = head + newline + newline.join(records)
    if records and draw(st.booleans()):
        data += newline
    return (BOM if draw(st.booleans()) else b"") + data


@st.composite
def json_lines_files(draw):
    lines = []
    for i in range(draw(st.integers(0, 20))):
        kind = draw(st.sampled_from(["object", "object", "object", "raw", "blank"]))
        if kind == "object":
            obj = {"id": i, "text": draw(st.one_of(st.text(max_size=20), st.none(), st.integers()))}
            if draw(st.booleans()):
                obj["extra"] = draw(st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                                              st.text(max_size=5), st.lists(st.integers(0, 3), max_size=3),
                                              st.booleans(), st.none()))
            line = json.dumps(obj, ensure_ascii=draw(st.booleans())).encode()
            lines.append(line + (b"\r" if draw(st.booleans()) else b""))
        elif kind == "raw":
            lines.append(draw(VALUES).replace(b"\n", b""))
        else:
            lines.append(b"")
    data = b"\n".join(lines)
    if lines and draw(st.booleans()):
        data += b"\n"
    return data


# -- the property ----------------------------------------------------------------------------------

def check_delimited(tmp_path, data, fmt, part_bytes, scan_bytes):
    path = tmp_path / f"in.{fmt}"
    path.write_bytes(data)
    header, expected = reference_delimited(data, fmt)
    src, parts, rows, bad = read_all(path, fmt, part_bytes, scan_bytes)
    assert list(src.headers[0]) == header
    assert sorted([*rows, *bad]) == list(range(1, len(expected) + 1)), "each reference row once"
    assert sum(p.rows for p in parts) == len(expected)
    for number, fields in enumerate(expected, start=1):
        if len(fields) != len(header):
            assert bad[number] == f"expected {len(header)} columns, got {len(fields)}"
        elif not all(utf8(v) for n, v in zip(header, fields) if n != "text"):  # the text's are ClassifyText's
            assert "is not valid UTF-8" in bad[number]
        else:
            assert number in rows, f"row {number} rejected: {bad.get(number)}"
            assert [rows[number][n] for n in header] == fields, f"row {number}"


def utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


# CI runs the same 300 examples each time; READER_EXAMPLES=N draws N new ones (a longer hunt).
SETTINGS = settings(max_examples=int(os.environ.get("READER_EXAMPLES", 300)), deadline=None,
                    derandomize="READER_EXAMPLES" not in os.environ, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                             HealthCheck.too_slow])


HUGE = b'id,text\n1,"' + b'a ""quoted"", long\r\nvalue ' * 20_000 + b'"\n2,' + b'x' * 300_000 + b'\n3,"c"\n'
SCAN_BYTES = st.sampled_from([1, 2, 3, 5, 8, 13, 64, 1 << 26])  # the planning pass's reads: buffers cut anywhere


@SETTINGS
@given(data=delimited_files("csv"), part_bytes=st.integers(1, 64), scan_bytes=SCAN_BYTES)
@example(data=b'id,text\n1,Great 5" screen\n2,Nice\n', part_bytes=1, scan_bytes=1 << 26)  # issue 36's first
@example(data=b'id,text\n1,"a 12"" screen, and\nmore"\n2,12" screen\n3,"b\nc"\n4,d\n', part_bytes=7,
         scan_bytes=1 << 26)  # issue 36's second: bare quotes and quoted values over lines in one file
@example(data=b'id,text\n1,"a""b",c\n2,"d"",e"\n', part_bytes=3, scan_bytes=1)  # doubled quotes cut by buffers
@example(data=b'id,text\n1,"never closed\n2,x\n', part_bytes=3, scan_bytes=1 << 26)
@example(data=HUGE, part_bytes=4096, scan_bytes=65536)  # values of 600 and 300 kB
def test_csv_rows_are_the_csv_modules_at_any_part_size(tmp_path, data, part_bytes, scan_bytes):
    check_delimited(tmp_path, data, "csv", part_bytes, scan_bytes)


@SETTINGS
@given(data=delimited_files("tsv"), part_bytes=st.integers(1, 64), scan_bytes=SCAN_BYTES)
@example(data=b'id\ttext\n1\tGreat 5" screen\n2\t"quoted\n3\tlone\rcr\n', part_bytes=2, scan_bytes=1)
def test_tsv_rows_are_the_csv_modules_at_any_part_size(tmp_path, data, part_bytes, scan_bytes):
    check_delimited(tmp_path, data, "tsv", part_bytes, scan_bytes)


@SETTINGS
@given(data=json_lines_files(), part_bytes=st.integers(1, 64), scan_bytes=SCAN_BYTES)
@example(data=b'{"id": 1, "text": "a"}\r\n\n{"id": 2, "text": "b\\nc"}\n{"id": 3, "x": [1]}', part_bytes=5,
         scan_bytes=3)
def test_json_lines_rows_are_the_json_modules_at_any_part_size(tmp_path, data, part_bytes, scan_bytes):
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    expected = reference_json_lines(data)
    src, parts, rows, bad = read_all(path, "jsonl", part_bytes, scan_bytes)
    assert sorted([*rows, *bad]) == list(range(1, len(expected) + 1)), "each reference row once"
    for number, obj in enumerate(expected, start=1):
        if obj is None or not isinstance(obj.get("text", 0), (str, type(None))) or "text" not in obj:
            assert number in bad, f"row {number} should be rejected"
        else:
            assert number in rows, f"row {number} rejected: {bad.get(number)}"
            got = {k: v for k, v in rows[number].items() if k in obj or v is not None}
            assert got.keys() == obj.keys(), f"row {number}"
            for k, v in obj.items():  # a field Arrow cannot type as one column is kept as its JSON text
                assert got[k] == v or (isinstance(got[k], str) and json.loads(got[k]) == v), f"row {number}: {k}"
