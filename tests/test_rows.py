"""The row checks and error rows both transforms share."""
import typing

import apache_beam as beam
import pytest


def test_lone_surrogates_are_rejected_with_a_reason_and_error_rows_stay_encodable():
    # Beam's UTF-8 string coder cannot carry lone surrogates between stages, so they can only reach
    # ClassifyText from a fused producer; the check still names the problem, and the error row is encodable.
    from beam_tensorrt.rows import InvalidRowError, check_text, error_row

    with pytest.raises(InvalidRowError, match="not valid Unicode .*position 5"):
        check_text({"text": "lone \ud800 surrogate"}, "text")
    row = error_row({"text": "lone \ud800"}, "why")
    assert row.element["text"] == "lone \ufffd"
    beam.coders.registry.get_coder(typing.Any).encode(row.element)


def test_a_rejected_row_is_an_error_row_or_with_no_error_output_fails_naming_the_row():
    import apache_beam as beam
    import pytest

    from beam_tensorrt.rows import ERRORS_TAG, InvalidRowError, output_clash, output_clash_reason, rejected

    out = rejected({"text": ""}, "field 'text' is empty", fail_fast=False)
    assert isinstance(out, beam.pvalue.TaggedOutput) and out.tag == ERRORS_TAG
    assert out.value.element == {"text": ""} and out.value.msg == "field 'text' is empty"
    with pytest.raises(InvalidRowError, match=r"field 'text' is empty \(row: \{'text': ''\}\); set error_handling"):
        rejected({"text": ""}, "field 'text' is empty", fail_fast=True)
    assert output_clash(["label", "score"], {"text": 1, "score": 2}) == ["score"]
    assert "['score'] that ClassifyText would write" in output_clash_reason(["score"])
