"""`beam-tensorrt classify` against the reference parsers, end to end: generated CSV, TSV and JSON
lines files (bare and doubled quotes, quoted delimiters and newlines, CRLF, a BOM, blank lines, no
final newline, bytes that are not UTF-8, ragged rows, long values) cut into parts of a few bytes;
the output and errors files hold every row the reference reads once, in order, with its fields.

In this process (the parts' size is patched), one worker, the default model on ONNX Runtime."""
import csv
import io
import json

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from test_jobs_inputs import delimited_files, json_lines_files, reference_delimited, reference_json_lines, utf8

SETTINGS = settings(max_examples=20, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def classify(monkeypatch, tmp_path):
    from beam_tensorrt import jobs
    from beam_tensorrt.cli import main

    def run(data: bytes, fmt: str, out_fmt: str, part_bytes: int, workers: int = 1):
        monkeypatch.setattr(jobs, "PART_BYTES", part_bytes)
        src, out, err = tmp_path / f"in.{fmt}", tmp_path / f"out.{out_fmt}", tmp_path / "errors.jsonl"
        src.write_bytes(data)
        assert main(["classify", "--input", str(src), "--output", str(out), "--errors", str(err),
                     "--workers", str(workers)]) == 0
        errors = [json.loads(line) for line in err.read_text(encoding="utf-8").splitlines()]
        return read_output(out, out_fmt), {e["row"]: e["msg"] for e in errors}, len(errors)

    return run


def read_output(path, fmt):
    if fmt == "parquet":
        return pq.read_table(path).to_pylist()
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t" if fmt == "tsv" else ","))


def is_text(value: bytes) -> bool:
    try:
        return bool(value.decode("utf-8").strip())
    except UnicodeDecodeError:
        return False


def check_delimited(classify, data, fmt, out_fmt, part_bytes, workers=1):
    header, expected = reference_delimited(data, fmt)
    rows, errors, n_errors = classify(data, fmt, out_fmt, part_bytes, workers)
    rejected = {}
    for number, fields in enumerate(expected, start=1):
        if len(fields) != len(header):
            rejected[number] = f"expected {len(header)} columns, got {len(fields)}"
        elif not all(is_text(v) if n == "text" else utf8(v) for n, v in zip(header, fields)):
            rejected[number] = "not valid UTF-8 or empty"
    kept = [fields for number, fields in enumerate(expected, start=1) if number not in rejected]
    assert n_errors == len(errors) == len(rejected) and set(errors) == set(rejected)
    for number, reason in rejected.items():
        if reason.startswith("expected"):
            assert errors[number] == reason
    assert len(rows) == len(kept)
    for row, fields in zip(rows, kept):
        assert [row[n] for n in header] == [v.decode("utf-8") for v in fields]
        assert row["label"] in ("POSITIVE", "NEGATIVE")


@SETTINGS
@given(data=delimited_files("csv", min_columns=2), out_fmt=st.sampled_from(["jsonl", "csv", "parquet"]), part_bytes=st.integers(1, 40))
@example(data=b'id,text\n1,Great 5" screen\n2,Nice\n', out_fmt="jsonl", part_bytes=1 << 20)  # issue 36
@example(data=b'id,text\n1,"a 12"" screen, and\nmore"\n2,12" screen\n3,"b\nc"\n4,d\n', out_fmt="jsonl", part_bytes=7)
def test_classify_csv_rows_are_the_csv_modules(classify, data, out_fmt, part_bytes):
    check_delimited(classify, data, "csv", out_fmt, part_bytes)


def test_classify_csv_rows_are_the_csv_modules_with_two_workers(classify):
    """Parts spread over two SDK worker processes (a worker pool) come back whole and in order."""
    records = [b'%d,"a 12"" screen, and\nmore %d"' % (i, i) if i % 3 == 0 else b'%d,%d" screen, fine %d' % (i, i, i)
               for i in range(60)]
    data = b"id,text\n" + b"\n".join(records) + b"\n2,too,many\n"
    check_delimited(classify, data, "csv", "jsonl", 40, workers=2)


@SETTINGS
@given(data=delimited_files("tsv", min_columns=2), out_fmt=st.sampled_from(["jsonl", "tsv", "parquet"]), part_bytes=st.integers(1, 40))
def test_classify_tsv_rows_are_the_csv_modules(classify, data, out_fmt, part_bytes):
    check_delimited(classify, data, "tsv", out_fmt, part_bytes)


@SETTINGS
@given(data=json_lines_files(), part_bytes=st.integers(1, 40))
def test_classify_json_lines_rows_are_the_json_modules(classify, data, part_bytes):
    expected = reference_json_lines(data)
    rows, errors, n_errors = classify(data, "jsonl", "jsonl", part_bytes)
    good = [i for i, obj in enumerate(expected, start=1)
            if obj is not None and isinstance(obj.get("text"), str) and obj["text"].strip()]
    assert n_errors == len(errors) and set(errors) == set(range(1, len(expected) + 1)) - set(good)
    assert len(rows) == len(good)
    for row, number in zip(rows, good):
        obj = expected[number - 1]
        assert row["id"] == obj["id"] and row["text"] == obj["text"] and row["label"] in ("POSITIVE", "NEGATIVE")


# -- what a user gets wrong is one line, before the job starts -------------------------------------

def run_cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "beam_tensorrt.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def one_error(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("beam-tensorrt: error: "), proc.stderr
    return lines[0]


@pytest.fixture
def small_csv(tmp_path):
    path = tmp_path / "q.csv"
    path.write_bytes(b'id,text\n1,Great 5" screen\n2,Nice\n')
    return path


def test_a_stray_word_or_an_unquoted_glob_is_an_error_and_beam_options_come_after_dashes(tmp_path, small_csv):
    out = tmp_path / "o.jsonl"
    line = one_error(run_cli("classify", "--input", small_csv, "--output", out, "stray", "--model", "nonexistent"))
    assert "unrecognized arguments: stray" in line and "Beam options go after --" in line and not out.exists()
    other = tmp_path / "b.csv"
    other.write_text("id,text\n")
    line = one_error(run_cli("classify", "--input", small_csv, other, "--output", out))  # a glob the shell expanded
    assert f"unrecognized arguments: {other}" in line and "quote a glob" in line
    assert "takes no Beam options" in one_error(run_cli("build", "--", "--runner=X"))
    proc = run_cli("classify", "--input", small_csv, "--output", out, "--", "--direct_num_workers=1")
    assert proc.returncode == 0 and len(read_output(out, "jsonl")) == 2, proc.stderr


def test_outputs_that_would_overwrite_an_input_or_are_directories_are_refused_before_the_job(tmp_path, small_csv):
    before = small_csv.read_bytes()
    line = one_error(run_cli("classify", "--input", small_csv, "--output", small_csv))
    assert f"--output {str(small_csv)!r} is an input file" in line and small_csv.read_bytes() == before
    data = tmp_path / "data"
    data.mkdir()
    jsonl = data / "in.jsonl"
    jsonl.write_text('{"text": "fine"}\n')
    line = one_error(run_cli("classify", "--input", data, "--output", tmp_path / "o.jsonl", "--errors", jsonl))
    assert f"--errors {str(jsonl)!r} is an input file" in line and jsonl.read_text() == '{"text": "fine"}\n'
    folder = tmp_path / "out.jsonl"
    folder.mkdir()
    line = one_error(run_cli("classify", "--input", small_csv, "--output", folder))
    assert f"--output {str(folder)!r} is a directory" in line and not list(folder.iterdir())


def test_an_unknown_model_lists_the_named_ones_and_a_remote_one_is_checked_at_once(tmp_path, small_csv):
    out = tmp_path / "o.jsonl"
    line = one_error(run_cli("classify", "--input", small_csv, "--output", out, "--model", "sentiment-minlm"))
    assert "'sentiment-minlm' is not a named model (sentiment-minilm)" in line
    line = one_error(run_cli("classify", "--input", small_csv, "--output", out, "--model", "nosuch://bucket/model"))
    assert "model artifact 'nosuch://bucket/model' cannot be read" in line and "while running" not in line


@pytest.mark.parametrize("source", ["csv", "tsv", "parquet"])
def test_an_input_with_no_row_keeps_its_columns_in_every_output_format(tmp_path, source):
    import pyarrow as pa

    src = tmp_path / f"empty.{source}"
    if source == "parquet":
        pq.write_table(pa.table({"id": pa.array([], pa.int64()), "text": pa.array([], pa.string())}), src)
    else:
        src.write_text("id,text\n" if source == "csv" else "id\ttext\n")
    for fmt in ("csv", "tsv", "parquet", "jsonl"):
        out, err = tmp_path / f"out.{fmt}", tmp_path / "errors.jsonl"
        proc = run_cli("classify", "--input", src, "--output", out, "--errors", err, "--probabilities-field", "p")
        assert proc.returncode == 0, proc.stderr
        assert err.read_text() == ""  # an errors file even with no row rejected
        if fmt == "parquet":
            schema = pq.read_schema(out)
            assert schema.names == ["id", "text", "label", "score", "p"]
            assert schema.field("score").type == pa.float64() and schema.field("p").type == pa.list_(pa.float64())
        elif fmt == "jsonl":
            assert out.read_text() == ""
        else:
            sep = "\t" if fmt == "tsv" else ","
            assert next(csv.reader(io.StringIO(out.read_text()), delimiter=sep)) == ["id", "text", "label", "score", "p"]


def test_the_config_is_validated_once_in_the_commands_process(monkeypatch, tmp_path):
    """Flags -> ClassifyTextConfig, validated (the model resolved) once; the job, ClassifyTextBatches
    and the worker pool take it as it is (each pool worker validates its own copy once)."""
    from beam_tensorrt.cli import main
    from beam_tensorrt.config import ClassifyTextConfig

    checks = []
    real = ClassifyTextConfig._check_model
    monkeypatch.setattr(ClassifyTextConfig, "_check_model", lambda self: checks.append(self.model) or real(self))
    (tmp_path / "in.csv").write_text("id,text\n1,a lovely film\n2,a dull mess\n", encoding="utf-8")
    assert main(["classify", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.jsonl"),
                 "--workers", "2", "--backend", "onnxruntime"]) == 0
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2
    assert checks == ["sentiment-minilm"], checks
