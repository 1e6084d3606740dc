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
