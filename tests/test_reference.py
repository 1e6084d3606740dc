"""The configuration reference is rendered from the schema: every field, its type and default."""
from beam_tensorrt.config import config_fields
from beam_tensorrt.reference import BEGIN, END, config_reference_markdown


def test_every_field_has_a_row_with_its_type_and_default():
    text = config_reference_markdown()
    assert text.startswith(BEGIN) and text.endswith(END)
    rows = {line.split("|")[1].strip(" `"): line for line in text.splitlines() if line.startswith("| `")}
    assert list(rows) == [f.name for f in config_fields()]
    assert "| integer | `128` |" in rows["max_seq_len"]
    assert "| boolean | `true` |" in rows["packing"]
    assert "`{output: string}` (optional) | —" in rows["error_handling"]
