"""ReadFiles and WriteFiles: the main job's readers and writers as Beam transforms (Beam YAML's
`type: ReadFiles` / `type: WriteFiles`). Python's csv and json modules and pyarrow are the trusted
implementations the rows are held against; every row comes out read or on the error output."""
import csv
import glob
import json

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.util import assert_that, equal_to

from beam_tensorrt.errors import ConfigError
from beam_tensorrt.jobs.transforms import ReadFiles, WriteFiles

# Pinned CSV cases: quotes, doubled quotes, newlines and commas inside quotes, a BOM, CRLF ends,
# blank lines, non-ASCII, an empty value, a last line without its newline.
TRICKY_CSV = ('\ufeffid,text\r\n1,"a ""quoted"" word"\r\n2,"two\nlines, and a comma"\r\n\r\n3,naïve café 🙂\r\n'
              '4,\r\n5,"ends here"')


def assert_read(path, rows, errors=(), **config):
    """ReadFiles(path) gives exactly ``rows`` (dicts) and the error rows ``errors`` ((file, row, msg))."""
    with beam.Pipeline() as p:
        result = p | ReadFiles(str(path), error_handling={"output": "bad"}, **config)
        assert_that(result["output"] | "Rows" >> beam.Map(lambda r: json.dumps(r._asdict(), sort_keys=True)),
                    equal_to([json.dumps(r, sort_keys=True) for r in rows]), label="rows")
        assert_that(result["bad"] | "Errors" >> beam.Map(lambda r: (r.element.file, r.element.row, r.msg)),
                    equal_to(list(errors)), label="errors")


def test_csv_rows_are_read_as_pythons_csv_module_reads_them(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(TRICKY_CSV.encode("utf-8"))
    with open(path, newline="", encoding="utf-8-sig") as f:
        expected = [dict(zip(["id", "text"], r)) for r in list(csv.reader(f))[1:] if r]
    assert len(expected) == 5
    assert_read(path, expected)


def test_a_row_that_cannot_be_read_goes_to_the_error_output_with_its_file_and_row(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b'id,text\n1,fine\n2,"too",many\n3,bad \xff byte\n4,also fine\n')
    assert_read(path, [{"id": "1", "text": "fine"}, {"id": "4", "text": "also fine"}], [
        (str(path), 2, f"{path}, row 2: expected 2 columns, got 3"),
        (str(path), 3, f"{path}, row 3: field 'text' is not valid UTF-8 (invalid start byte at byte 4)")])


def test_every_row_of_many_parts_comes_out_once(tmp_path):
    path = tmp_path / "in.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text"])
        writer.writerows([i, f"row {i}, " + "words " * (i % 7) + ("\nwith a newline" if i % 5 == 0 else "")]
                         for i in range(3000))
    transform = ReadFiles(str(path))
    transform.part_bytes = 4096  # ~20 parts
    with beam.Pipeline() as p:
        ids = p | transform | beam.Map(lambda r: int(r.id))
        assert_that(ids, equal_to(list(range(3000))))


def test_parquet_and_text_keep_their_schema(tmp_path):
    pq.write_table(pa.table({"id": pa.array([1, 2], pa.int32()), "review": ["good", "bad"]}), tmp_path / "a.parquet")
    (tmp_path / "lines.txt").write_text("first line\nsecond line\n", encoding="utf-8")
    parquet = ReadFiles(str(tmp_path / "a.parquet"))
    assert parquet.schema == pa.schema([("id", pa.int32()), ("review", pa.string())])
    text = ReadFiles(str(tmp_path / "lines.txt"), text_field="body")
    assert text.schema == pa.schema([("body", pa.string())])
    assert_read(tmp_path / "a.parquet", [{"id": 1, "review": "good"}, {"id": 2, "review": "bad"}])
    assert_read(tmp_path / "lines.txt", [{"body": "first line"}, {"body": "second line"}], text_field="body")


@pytest.mark.parametrize("make, config, field, needle", [
    (None, {"path": "{tmp}/nothing-*.csv"}, "path", "matches no file"),
    ("in.jsonl", {"path": "{tmp}/in.jsonl"}, "path", "ReadFromJson"),
    ("in.xml", {"path": "{tmp}/in.xml"}, "path", "unknown extension"),
    ("in.csv", {"path": "{tmp}/in.csv", "error_handling": {"out": "x"}}, "error_handling", "{output: NAME}"),
])
def test_read_mistakes_fail_at_construction_naming_the_field(tmp_path, make, config, field, needle):
    if make:
        (tmp_path / make).write_text("id,text\n1,a\n" if make.endswith(".csv") else '{"text": "a"}\n')
    config = {k: (v.format(tmp=tmp_path) if isinstance(v, str) else v) for k, v in config.items()}
    with pytest.raises(ConfigError) as e:
        ReadFiles(**config)
    assert e.value.field == field and needle in str(e.value), str(e.value)


def test_files_with_different_headers_are_refused(tmp_path):
    (tmp_path / "a.csv").write_text("id,text\n1,a\n")
    (tmp_path / "b.csv").write_text("text,id\nb,2\n")
    with pytest.raises(ConfigError, match="headers differ"):
        ReadFiles(str(tmp_path / "*.csv"))


def test_without_an_error_output_an_unreadable_row_fails_the_pipeline_naming_it(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("id,text\n1,fine\n2,too,many\n")
    with pytest.raises(Exception, match=r"in\.csv, row 2: expected 2 columns, got 3"):
        with beam.Pipeline() as p:
            _ = p | ReadFiles(str(path))


ROWS = [{"id": 1, "text": 'a "quoted", word', "probabilities": [0.25, 0.75], "note": None},
        {"id": 2, "text": "two\nlines", "probabilities": [1.0, 0.0], "note": "naïve 🙂"}]
ROW_TYPE = beam.typehints.row_type.RowTypeConstraint.from_fields(
    [("id", int), ("text", str), ("probabilities", list[float]), ("note", beam.typehints.Optional[str])])


def write(tmp_path, fmt):
    with beam.Pipeline() as p:
        _ = (p | beam.Create([beam.Row(**r) for r in ROWS]).with_output_types(ROW_TYPE)
             | WriteFiles(str(tmp_path / "out" / "labelled"), format=fmt))
    return sorted(glob.glob(str(tmp_path / "out" / "labelled-*")))


def test_csv_written_reads_back_with_pythons_csv_module(tmp_path):
    files = write(tmp_path, "csv")
    assert [f.rsplit("/", 1)[1] for f in files] == ["labelled-00000-of-00001.csv"]
    with open(files[0], newline="", encoding="utf-8") as f:
        back = list(csv.DictReader(f))
    assert [(r["id"], r["text"], json.loads(r["probabilities"]), r["note"]) for r in back] == [
        (str(r["id"]), r["text"], r["probabilities"], r["note"] or "") for r in ROWS]


def test_json_lines_and_parquet_written_read_back_as_written(tmp_path):
    [jsonl] = write(tmp_path / "j", "jsonl")
    with open(jsonl, encoding="utf-8") as f:
        assert [json.loads(line) for line in f] == ROWS
    [parquet] = write(tmp_path / "p", "parquet")
    assert pq.read_table(parquet).to_pylist() == ROWS


def test_tsv_has_one_header_a_file_whatever_the_number_of_tables(tmp_path):
    rows = [beam.Row(id=i, text=f"t{i}") for i in range(20000)]  # more than one table of 8,192 rows
    with beam.Pipeline() as p:
        _ = p | beam.Create(rows) | WriteFiles(str(tmp_path / "out"), format="tsv")
    files = glob.glob(str(tmp_path / "out-*.tsv"))
    records = [r for f in files for r in csv.reader(open(f, newline="", encoding="utf-8"), delimiter="\t")]
    assert records.count(["id", "text"]) == len(files) and [r for r in records[:1]] == [["id", "text"]]
    assert sorted(int(r[0]) for r in records if r != ["id", "text"]) == list(range(20000))


@pytest.mark.parametrize("config, field", [({"path": "out/x", "format": "xml"}, "format"),
                                           ({"path": "out/", "format": "csv"}, "path")])
def test_write_mistakes_fail_at_construction_naming_the_field(config, field):
    with pytest.raises(ConfigError) as e:
        WriteFiles(**config)
    assert e.value.field == field
