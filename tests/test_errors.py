"""The user's mistakes are one family, ``UserError``: the CLI prints them in one line, and anything
else keeps its traceback. A rejected row travels as data, also through Beam's re-raising."""
import pytest

from beam_tensorrt import errors
from beam_tensorrt.cli import main, user_error


def test_every_mistake_class_is_a_user_error_and_keeps_its_builtin_base():
    for cls, base in [(errors.UsageError, ValueError), (errors.ConfigError, ValueError),
                      (errors.RejectedRow, ValueError), (errors.ArtifactError, ValueError),
                      (errors.MissingEncoderError, ImportError), (errors.TensorRTUnavailable, ImportError),
                      (errors.PlanNotBuilt, RuntimeError), (errors.PrecisionRefused, RuntimeError)]:
        assert issubclass(cls, errors.UserError) and issubclass(cls, base), cls


def test_user_errors_are_one_line_and_bugs_keep_their_traceback(monkeypatch, tmp_path, capsys):
    import beam_tensorrt.jobs as jobs

    src = tmp_path / "in.txt"
    src.write_text("fine\n")

    def fail(exc):
        def classify_file(*args, **kwargs):
            raise exc
        monkeypatch.setattr(jobs, "classify_file", classify_file)

    fail(errors.UsageError("--input 'x': what to do\nmore"))
    assert main(["classify", "--input", str(src), "--output", str(tmp_path / "o.jsonl")]) == 2
    assert capsys.readouterr().err == "beam-tensorrt: error: --input 'x': what to do\n"
    fail(ValueError("an internal inconsistency"))  # not a UserError: a bug, shown whole
    with pytest.raises(ValueError, match="an internal inconsistency"):
        main(["classify", "--input", str(src), "--output", str(tmp_path / "o.jsonl")])


def test_a_rejected_row_keeps_its_data_when_beam_re_raises_it_with_the_step_name():
    rejected = errors.RejectedRow.of("field 'text' is empty (set allow_empty_text to classify such texts)",
                                     "in.csv", 3, '{"text": ""}')
    # What Beam's DoFn runner does: the same type, its step's name appended to the first argument.
    again = type(rejected)(rejected.args[0] + " [while running 'WriteErrors']", *rejected.args[1:])
    assert (again.file, again.row, again.shown) == ("in.csv", 3, '{"text": ""}')
    assert user_error(again) == ("in.csv, row 3: field 'text' is empty (pass --allow-empty-text to classify such "
                                 "texts): {\"text\": \"\"} (pass --errors FILE to write such rows there and keep going)")
