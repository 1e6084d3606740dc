"""What both transforms do with a row that cannot be classified: check its text, say why, and put
it on the error output in Beam YAML's shape (``element``, ``msg``, ``stack``), one row each."""
from __future__ import annotations

from typing import Any, Mapping, Optional

import apache_beam as beam

# The tag of the error output inside each transform.
ERRORS_TAG = "errors"


class InvalidRowError(ValueError):
    """A row that cannot be classified; its message is the reason on the error output."""


def text_of(fields: Mapping[str, Any], text_field: str) -> Optional[str]:
    """The row's text as a string column takes it (a string or None), or ``InvalidRowError`` saying
    why it cannot be one: the field missing, not a string, not encodable as UTF-8. Whether a null or
    blank text is classified is the table steps' check (``classify_text_batches``)."""
    if text_field not in fields:
        raise InvalidRowError(f"field '{text_field}' is missing (row has: {', '.join(map(str, fields)) or 'no fields'})")
    text = fields[text_field]
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidRowError(f"field '{text_field}' must be a string, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidRowError(f"field '{text_field}' is not valid Unicode ({e.reason} at position {e.start})") from None
    return text


def check_text(fields: Mapping[str, Any], text_field: str, allow_empty: bool = False) -> str:
    """The row's text, or ``InvalidRowError`` saying why it cannot be classified: ``text_of``'s
    checks, then null and (unless ``allow_empty``) blank texts. For a row classified alone (Beam
    YAML's RunInference); ClassifyText checks whole tables."""
    text = text_of(fields, text_field)
    if text is None:
        raise InvalidRowError(null_text_reason(text_field))
    if not allow_empty and not text.strip():
        raise InvalidRowError(empty_text_reason(text_field, text))
    return text


def null_text_reason(text_field: str) -> str:
    return f"field '{text_field}' is null"


def empty_text_reason(text_field: str, text: str) -> str:
    return (f"field '{text_field}' is {'empty' if not text else 'only whitespace'} "
            "(set allow_empty_text to classify such texts)")


def encodable(value: Any) -> Any:
    """A copy with lone surrogates replaced by U+FFFD: Beam's string coder (UTF-8) rejects them,
    and an error row must survive being encoded downstream."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, Mapping):
        return {encodable(k): encodable(v) for k, v in value.items()}
    if isinstance(value, beam.Row):
        return beam.Row(**{k: encodable(v) for k, v in value._asdict().items()})
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return type(value)(**{k: encodable(v) for k, v in value._asdict().items()})
    if isinstance(value, (list, tuple)):
        return type(value)(encodable(v) for v in value)
    return value


def output_clash(names: list[str], fields: Any) -> list[str]:
    """The output field names ``names`` that the input's ``fields`` already has."""
    return [n for n in names if n in fields]


def output_clash_reason(clash: list[str]) -> str:
    return (f"input already has field(s) {clash} that ClassifyText would write; "
            "rename them with label_field/score_field/...")


def rejected(element: Any, reason: str, fail_fast: bool) -> Any:
    """A row that cannot be classified: its error row for the error output, or, without one
    (``fail_fast``), ``InvalidRowError`` that fails the pipeline with the reason and the row."""
    if fail_fast:
        raise InvalidRowError(f"{reason} (row: {element!r:.200}); set error_handling to route such rows "
                              "to an error output instead of failing")
    return beam.pvalue.TaggedOutput(ERRORS_TAG, error_row(element, reason))


def error_row(element: Any, message: str, stack: str = "") -> beam.Row:
    """Beam YAML's error shape: the failed element, a message, a stack."""
    return beam.Row(element=encodable(element), msg=message, stack=stack)


def fail_on_error_row(error: Any) -> None:
    """Where no error output was asked for: a row that could not be classified fails the pipeline."""
    raise RuntimeError(f"{error.msg} (set error_handling to route such rows to an error output)")


def failed_batch_rows(rows: Any, exc_info: Any) -> Any:
    """A batch whose inference raised (Beam's ``with_exception_handling``): an error row for each of
    its input ``rows``, each with the exception's message and stack. Both transforms' fan-out."""
    message, stack = inference_failure(exc_info)
    for row in rows:
        yield error_row(row, message, stack)


def inference_failure(exc_info: Any) -> tuple[str, str]:
    """(message, stack) of a failure that Beam's ``with_exception_handling`` caught: it hands on
    ``(exception class, repr(exception), formatted traceback lines)``, not the exception itself."""
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        _, described, lines = exc_info
        return f"inference failed: {described}", "".join(lines) if isinstance(lines, list) else str(lines)
    return f"inference failed: {exc_info!r}", ""
