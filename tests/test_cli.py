"""The main job, as a newcomer runs it: `beam-tensorrt classify` over files, in a subprocess."""
import json
import subprocess
import sys

from conftest import EXAMPLES

CLI = [sys.executable, "-m", "beam_tensorrt.cli"]


def run_cli(*args, timeout=300):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_classify_tsv_keeps_fields_and_labels(tmp_path, reviews):
    out = tmp_path / "out.jsonl"
    proc = run_cli("classify", "--input", str(EXAMPLES / "reviews.tsv"), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = read_jsonl(out)
    assert len(rows) == len(reviews)
    assert {tuple(sorted(r)) for r in rows} == {("expected", "id", "label", "score", "text")}
    assert all(r["label"] == r["expected"] for r in rows)


def test_classify_jsonl_other_text_field_with_errors_file(tmp_path):
    src = tmp_path / "in.jsonl"
    lines = [json.dumps({"body": "Great food and lovely staff.", "k": 1}),
             json.dumps({"body": "Cold, bland and overpriced.", "k": 2}),
             json.dumps({"body": None, "k": 3}),
             "{not json",
             json.dumps({"k": 5})]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out, err = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    proc = run_cli("classify", "--input", str(src), "--output", str(out), "--text-field", "body", "--errors", str(err))
    assert proc.returncode == 0, proc.stderr
    good = sorted(read_jsonl(out), key=lambda r: r["k"])
    assert [(r["k"], r["label"]) for r in good] == [(1, "POSITIVE"), (2, "NEGATIVE")]
    errors = read_jsonl(err)
    assert len(good) + len(errors) == len(lines)  # nothing lost
    msgs = sorted(e["msg"] for e in errors)
    assert any("invalid JSON" in m for m in msgs)
    assert any("'body' is null" in m for m in msgs)
    assert any("'body' is missing" in m for m in msgs)


def test_classify_csv_and_txt(tmp_path):
    csv_in = tmp_path / "in.csv"
    csv_in.write_text('id,review\n1,"Simply wonderful, a joy."\n2,"Awful, boring, a waste of time."\n', encoding="utf-8")
    out = tmp_path / "csv.jsonl"
    proc = run_cli("classify", "--input", str(csv_in), "--output", str(out), "--text-field", "review")
    assert proc.returncode == 0, proc.stderr
    assert sorted((r["id"], r["label"]) for r in read_jsonl(out)) == [("1", "POSITIVE"), ("2", "NEGATIVE")]
    txt = tmp_path / "in.txt"
    txt.write_text("I love this!\nI hate this.\n", encoding="utf-8")
    proc = run_cli("classify", "--input", str(txt), "--output", str(tmp_path / "txt.jsonl"))
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["label"] for r in read_jsonl(tmp_path / "txt.jsonl")) == ["NEGATIVE", "POSITIVE"]


def test_bad_config_is_a_clear_error_not_a_traceback(tmp_path):
    proc = run_cli("classify", "--input", str(EXAMPLES / "reviews.tsv"), "--output", str(tmp_path / "o.jsonl"),
                   "--backend", "nope")
    assert proc.returncode == 2
    assert "'backend'" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("classify", "--input", str(tmp_path / "missing.xlsx"), "--output", str(tmp_path / "o.jsonl"))
    assert proc.returncode == 2 and "unknown extension" in proc.stderr
