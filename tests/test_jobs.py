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
        assert listed == ["out/labels.jsonl"]  # no rejected row: no errors file
        s3.put_object(Bucket="reviews", Key="in/mixed.jsonl", Body=b'{"text": "superb"}\n{"text": null}\n')
        assert main(["classify", "--input", "s3://reviews/in/mixed.jsonl", "--output", "s3://reviews/out/m.jsonl",
                     "--errors", "s3://reviews/out/m-errors.jsonl", *beam]) == 0
        assert [r["label"] for r in read("out/m.jsonl")] == ["POSITIVE"]
        assert [e["msg"] for e in read("out/m-errors.jsonl")] == ["field 'text' is null"]
        assert main(["classify", "--input", "s3://reviews/in/missing.tsv", "--output", "s3://reviews/o.jsonl",
                     *beam]) == 2
