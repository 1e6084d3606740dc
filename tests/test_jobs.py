"""The main job (`jobs.classify_file`) through Beam's filesystems."""
import json

from conftest import EXAMPLES


def test_classify_reads_and_writes_through_beam_filesystems(monkeypatch):
    """s3:// paths, through Beam's own S3 filesystem, against moto's in-process S3 (no network): the
    CLI reads its input (header included), checks it exists, and writes its outputs with Beam's
    FileSystems. In this process, since moto patches the AWS client here."""
    boto3 = __import__("pytest").importorskip("boto3")
    moto = __import__("pytest").importorskip("moto")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    from beam_tensorrt.cli import main

    with moto.mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="reviews")
        s3.put_object(Bucket="reviews", Key="in/reviews.tsv", Body=(EXAMPLES / "reviews.tsv").read_bytes())
        beam = ["--", "--s3_region_name=us-east-1", "--s3_access_key_id=testing", "--s3_secret_access_key=testing"]
        assert main(["classify", "--input", "s3://reviews/in/reviews.tsv", "--output", "s3://reviews/out/labels.jsonl",
                     "--errors", "s3://reviews/out/errors.jsonl", *beam]) == 0
        def read(key):
            return [json.loads(line) for line in
                    s3.get_object(Bucket="reviews", Key=key)["Body"].read().decode().splitlines()]

        rows = read("out/labels.jsonl")
        assert len(rows) == 20 and all(r["label"] == r["expected"] for r in rows)
        listed = [o["Key"] for o in s3.list_objects_v2(Bucket="reviews", Prefix="out/")["Contents"]]
        # No rejected row: Beam's S3 filesystem cannot write an empty errors file (locally it is there)
        assert listed == ["out/labels.jsonl"]
        s3.put_object(Bucket="reviews", Key="in/mixed.jsonl", Body=b'{"text": "superb"}\n{"text": null}\n')
        assert main(["classify", "--input", "s3://reviews/in/mixed.jsonl", "--output", "s3://reviews/out/m.jsonl",
                     "--errors", "s3://reviews/out/m-errors.jsonl", *beam]) == 0
        assert [r["label"] for r in read("out/m.jsonl")] == ["POSITIVE"]
        assert [e["msg"] for e in read("out/m-errors.jsonl")] == ["field 'text' is null"]
        assert main(["classify", "--input", "s3://reviews/in/missing.tsv", "--output", "s3://reviews/o.jsonl",
                     *beam]) == 2


def run_job(*args, timeout=300):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "beam_tensorrt.cli", "classify", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def summary(proc) -> str:
    lines = [line for line in proc.stderr.strip().splitlines() if "the model 'sentiment-minilm'" not in line
             and "built 'sentiment-minilm'" not in line]
    assert proc.returncode == 0 and len(lines) == 1, proc.stderr  # a clean run says one thing
    return lines[0]


def test_output_format_follows_the_extension_and_parquet_keeps_its_types(tmp_path):
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp_path / "in.parquet"
    when = [datetime.datetime(2026, 11, 26, 8, i) for i in range(3)]
    pq.write_table(pa.table({"k": pa.array([7, 8, 9], pa.int32()), "review": ["Simply wonderful, a joy.",
                                                                           "Awful, boring, a waste of time.",
                                                                           "Great food and lovely staff."],
                             "at": when}), src, row_group_size=2)
    out = tmp_path / "out.parquet"
    assert summary(run_job("--input", src, "--output", out, "--text-field", "review",
                           "--probabilities-field", "p")).startswith("beam-tensorrt: classified 3 rows -> ")
    table = pq.read_table(out)
    assert table.schema.field("k").type == pa.int32() and pa.types.is_timestamp(table.schema.field("at").type)
    assert table.column_names == ["k", "review", "at", "label", "score", "p"]
    assert table.column("label").to_pylist() == ["POSITIVE", "NEGATIVE", "POSITIVE"]
    assert table.column("k").to_pylist() == [7, 8, 9]  # input order
    tsv = tmp_path / "out.tsv"
    assert run_job("--input", src, "--output", tsv, "--text-field", "review").returncode == 0
    lines = tsv.read_text().splitlines()
    assert lines[0].replace('"', "").split("\t") == ["k", "review", "at", "label", "score"] and len(lines) == 4


def test_rejected_rows_carry_their_file_and_row(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('id,review\n1,"Simply wonderful,\nreally."\n2,too,many\n3,\n4,"A ""great"" film"\n', encoding="utf-8")
    out, err = tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    proc = run_job("--input", src, "--output", out, "--errors", err, "--text-field", "review")
    assert "2 rows rejected" in summary(proc)
    assert [(r["id"], r["label"]) for r in read_jsonl(out)] == [("1", "POSITIVE"), ("4", "POSITIVE")]
    assert read_jsonl(out)[0]["review"] == "Simply wonderful,\nreally."  # a quoted value over two lines
    assert [(e["file"], e["row"], e["msg"].split(" (")[0]) for e in read_jsonl(err)] == [
        (str(src), 2, "expected 2 columns, got 3"), (str(src), 3, "field 'review' is empty")]


def test_text_that_is_not_utf8_is_rejected_with_its_line_or_stops_the_job_naming_it(tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"I loved this film\nI love this caf\xe9 so much\nI hated it.\n")
    out, err = tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    proc = run_job("--input", src, "--output", out, "--errors", err)
    assert "1 row rejected" in summary(proc)
    assert [r["label"] for r in read_jsonl(out)] == ["POSITIVE", "NEGATIVE"]
    (error,) = read_jsonl(err)
    assert error["row"] == 2 and "not valid UTF-8 (invalid continuation byte at byte 15)" in error["msg"]
    proc = run_job("--input", src, "--output", tmp_path / "other.jsonl")
    line = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and f"{src}, row 2: field 'text' is not valid UTF-8" in line
    assert "pass --errors FILE" in line and not (tmp_path / "other.jsonl").exists()
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    assert run_job("--input", jsonl, "--output", out, "--errors", err).returncode == 0
    assert [(e["row"], e["msg"]) for e in read_jsonl(err)] == [(2, "field 'text' is not valid UTF-8 (unexpected end of data at byte 3)")]


def test_directories_and_globs_are_inputs(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("I loved it\n", encoding="utf-8")
    (data / "b.txt").write_text("I hated it\nWhat a bore\n", encoding="utf-8")
    (data / ".hidden.txt").write_text("not an input\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert summary(run_job("--input", data, "--output", out)).startswith("beam-tensorrt: classified 3 rows")
    assert [r["label"] for r in read_jsonl(out)] == ["POSITIVE", "NEGATIVE", "NEGATIVE"]
    assert summary(run_job("--input", f"{data}/b*.txt", "--output", out)).startswith("beam-tensorrt: classified 2")
    (data / "c.csv").write_text("text\nok\n", encoding="utf-8")
    proc = run_job("--input", data, "--output", out)
    assert proc.returncode == 2 and "several formats (csv, txt)" in proc.stderr


def test_several_workers_give_the_rows_of_one_in_input_order(tmp_path):
    src = tmp_path / "in.txt"
    texts = [f"{'a lovely, warm film' if i % 3 else 'a dull, tedious mess'} number {i}" for i in range(400)]
    src.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    outs = {}
    for workers in (1, 2):
        outs[workers] = tmp_path / f"out{workers}.jsonl"
        assert f"{workers} worker" in summary(run_job("--input", src, "--output", outs[workers], "--workers", workers,
                                                      "--batch-size", 64))
    one, two = read_jsonl(outs[1]), read_jsonl(outs[2])
    assert [r["text"] for r in two] == texts and [r["label"] for r in one] == [r["label"] for r in two]
    shards = run_job("--input", src, "--output", tmp_path / "s.jsonl", "--shards", 3, "--batch-size", 64)
    assert shards.returncode == 0, shards.stderr
    parts = sorted(tmp_path.glob("s-*-of-00003.jsonl"))
    assert len(parts) == 3 and [r["text"] for p in parts for r in read_jsonl(p)] == texts


def test_truncated_rows_are_counted_and_marked_on_request(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("a short one\n" + "word " * 300 + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    line = summary(run_job("--input", src, "--output", out))
    assert "1 cut at 128 tokens (--truncated-field NAME marks them)" in line
    assert all(set(r) == {"text", "label", "score"} for r in read_jsonl(out))
    summary(run_job("--input", src, "--output", out, "--truncated-field", "cut", "--max-seq-len", "256"))
    assert [r["cut"] for r in read_jsonl(out)] == [False, True]


def test_a_failed_job_leaves_no_temporary_files_and_an_earlier_output_alone(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "fine"}\n{"text": null}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    out.write_text("an earlier run's output\n")
    proc = run_job("--input", src, "--output", out)
    assert proc.returncode == 2 and "row 2: field 'text' is null" in proc.stderr
    assert out.read_text() == "an earlier run's output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]


def test_bundles_replayed_by_the_runner_leave_no_duplicates_in_file_sinks(tmp_path):
    """FnApiRunner's --direct_runner_bundle_repeat runs every bundle again (here twice more), as a
    runner retrying bundles would; the JSON-lines sink must still hold each row once."""
    from beam_tensorrt.jobs import classify_file

    out, errors = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    result = classify_file(str(EXAMPLES / "reviews.tsv"), str(out), errors_path=str(errors),
                           pipeline_args=["--direct_runner_bundle_repeat=2"])
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert (result.counts.classified, result.counts.errors, result.rows) == (20, 0, 20)
    assert sorted(ids, key=int) == [str(i) for i in range(1, 21)]


def test_a_job_leaves_its_process_environment_as_it_found_it(tmp_path, monkeypatch):
    """The pool's workers get their share of the tokenizer's threads, the in-process worker its GPU:
    for the job only, not for whatever the calling program does next."""
    import os

    from beam_tensorrt.jobs import classify_file

    monkeypatch.delenv("RAYON_NUM_THREADS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    src = tmp_path / "in.txt"
    src.write_text("a lovely film\na dull film\n")
    result = classify_file(str(src), str(tmp_path / "two.jsonl"), workers=2)
    assert result.counts.classified == 2 and "RAYON_NUM_THREADS" not in os.environ
    classify_file(str(src), str(tmp_path / "one.jsonl"), gpus=["1"])
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"
