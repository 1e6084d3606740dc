"""The main job's formats, told by extension before Beam is imported."""
import pytest

from beam_tensorrt.formats import input_format, output_format
from beam_tensorrt.errors import UsageError


@pytest.mark.parametrize("path, fmt", [("a.tsv", "tsv"), ("b.CSV", "csv"), ("gs://b/c.jsonl", "jsonl"),
                                       ("d.json", "jsonl"), ("e.ndjson", "jsonl"), ("f.txt", "txt"),
                                       ("g.parquet", "parquet")])
def test_input_format_follows_the_extension(path, fmt):
    assert input_format(path) == fmt


def test_unknown_extensions_are_refused_with_the_choices():
    with pytest.raises(UsageError, match="unknown extension; use one of"):
        input_format("reviews.xlsx")
    with pytest.raises(UsageError, match="the format follows the extension"):
        output_format("--output", "out.xlsx")
    assert [output_format("--output", f"o{ext}") for ext in (".jsonl", ".csv", ".tsv", ".parquet")] == [
        "jsonl", "csv", "tsv", "parquet"]
