"""ClassifyTextConfig: the one schema; a setting reaches a backend by one path, its default written once."""
import dataclasses
import json

import pytest

from beam_tensorrt.backends import BackendOptions
from beam_tensorrt.config import ClassifyTextConfig, ErrorHandling
from beam_tensorrt.errors import ConfigError


def test_backend_settings_default_to_backend_options_and_reach_it_unchanged():
    defaults, options = ClassifyTextConfig(), BackendOptions()
    for name in ("max_seq_len", "device", "packing", "intra_op_threads", "engine_cache"):
        assert getattr(defaults, name) == getattr(options, name), name
    config = ClassifyTextConfig.from_kwargs(dict(max_seq_len=256, device="cpu", packing=False, intra_op_threads=3,
                                                 engine_cache="/tmp/plans"))
    assert config.backend_options() == dataclasses.replace(options, max_seq_len=256, device="cpu", packing=False,
                                                           intra_op_threads=3, engine_cache="/tmp/plans")


@pytest.mark.parametrize("given", [{"output": "bad"}, ErrorHandling("bad")])
def test_error_handling_is_a_field_of_the_schema(given):
    config = ClassifyTextConfig.from_kwargs({"error_handling": given})
    assert config.error_handling == ErrorHandling("bad") and config.error_output == "bad"
    assert ClassifyTextConfig.from_kwargs({}).error_output is None


@pytest.mark.parametrize("given, says", [
    ({"output": 3}, "string 'output'"),
    ({"output": "x", "extra": 1}, "unknown key(s) ['extra']"),
    ({"output": "  "}, "must not be empty"),
    ("errors", "string 'output'"),
])
def test_bad_error_handling_names_the_field(given, says):
    with pytest.raises(ConfigError, match="'error_handling'") as raised:
        ClassifyTextConfig.from_kwargs({"error_handling": given})
    assert raised.value.field == "error_handling" and says in raised.value.reason


def test_unknown_fields_and_bad_values_name_the_field():
    with pytest.raises(ConfigError) as raised:
        ClassifyTextConfig.from_kwargs({"max_seq_lenght": 64})
    assert raised.value.field == "max_seq_lenght" and "known fields" in raised.value.reason
    with pytest.raises(ConfigError) as raised:
        ClassifyTextConfig.from_kwargs({"max_batch_size": True})
    assert raised.value.field == "max_batch_size" and "expected an integer" in raised.value.reason


def test_a_config_travels_as_json_with_only_what_differs_from_the_defaults():
    config = ClassifyTextConfig.from_kwargs({"text_field": "review", "max_seq_len": 256,
                                             "error_handling": {"output": "errors"}})
    assert json.loads(config.to_json()) == {"text_field": "review", "max_seq_len": 256,
                                            "error_handling": {"output": "errors"}}
    assert ClassifyTextConfig.from_json(config.to_json()) == config
    assert ClassifyTextConfig().validate().to_json() == "{}"


def test_every_backend_option_is_reachable_from_the_config():
    """Each BackendOptions field has a config field of the same name and default, passed on as it is."""
    options = {f.name: f.default for f in dataclasses.fields(BackendOptions)}
    fields = {f.name: f.default for f in dataclasses.fields(ClassifyTextConfig)}
    assert {name: fields.get(name) for name in options} == options
    config = ClassifyTextConfig.from_kwargs({"cuda_graphs": False, "max_seq_len": 64})
    assert config.backend_options() == BackendOptions(cuda_graphs=False, max_seq_len=64)
