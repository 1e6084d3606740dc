"""`beam-tensorrt yaml`'s choice of local SDK workers (``cli.yaml_workers``): every rule pinned with
an explicit pipeline; the run itself is in tests/test_yaml.py."""
import json

import pytest
import yaml

from beam_tensorrt.cli.yaml_workers import choose, classify_configs

PYTHON = [{"type": "python", "config": {}, "transforms": {"ClassifyText": "beam_tensorrt.ClassifyText"}}]
REMOTE = [{"type": "remote", "config": {"address": "127.0.0.1:8097"},
           "transforms": {"ClassifyText": "beam:schematransform:beam_tensorrt:classify_text:v1"}}]
LOCAL = {"runner": "FnApiRunner"}


def pipeline(providers, *configs) -> dict:
    transforms = [{"type": "ReadFromParquet", "config": {"path": "in.parquet"}}]
    transforms += [{"type": "ClassifyText", "config": c} for c in configs]
    return {"pipeline": {"type": "chain", "transforms": transforms}, "providers": providers}


@pytest.fixture
def gpu_host(monkeypatch):
    """A 16-core host whose `backend: auto` is TensorRT (what the rules see on an H100 host)."""
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    monkeypatch.setattr("beam_tensorrt.backends.resolve_auto", lambda: "tensorrt")


def test_in_process_classify_text_is_found_only_under_a_python_provider():
    config = {"backend": "tensorrt", "model": "sentiment-minilm"}
    assert classify_configs(pipeline(PYTHON, config)) == [config]
    assert classify_configs(pipeline(REMOTE, config)) == []
    assert classify_configs(pipeline([{"include": "/x/beam_tensorrt/yaml/providers.yaml"}], config)) == [config]
    assert classify_configs(pipeline([{"include": "/x/beam_tensorrt/yaml/remote_providers.yaml"}], config)) == []
    assert classify_configs(pipeline([], config)) == []
    nested = {"pipeline": {"transforms": [{"type": "composite", "transforms": [{"type": "ClassifyText"}]}]},
              "providers": PYTHON}
    assert classify_configs(nested) == [{}]


def test_a_gpu_pipeline_gets_the_main_jobs_workers_and_its_model_preloaded(gpu_host):
    chosen = choose(pipeline(PYTHON, {"backend": "auto", "max_batch_size": 1024}), LOCAL, "auto", gpus=1)
    assert chosen.workers == 8
    assert json.loads(chosen.preload.to_json()) == {"max_batch_size": 1024}  # the defaults are not restated
    assert choose(pipeline(PYTHON, {}), LOCAL, "auto", gpus=2).workers == 8  # one per two cores caps it


def test_the_pipelines_own_choice_stands(gpu_host):
    spec = pipeline(PYTHON, {"backend": "tensorrt"})
    for options, reason in (({"runner": "FlinkRunner"}, "--runner=FlinkRunner"),
                            ({**LOCAL, "direct_num_workers": 2}, "--direct_num_workers"),
                            ({**LOCAL, "direct_running_mode": "multi_processing"}, "--direct_running_mode"),
                            ({**LOCAL, "streaming": True}, "streaming")):
        chosen = choose(spec, options, "auto", gpus=1)
        assert chosen.workers == 1 and reason in chosen.reason, (options, chosen)


def test_one_process_where_more_would_not_help(gpu_host, monkeypatch):
    monkeypatch.setattr("beam_tensorrt.gpus.gpu_backend_host", lambda: False)  # the service's host is elsewhere
    assert choose(pipeline(PYTHON, {"backend": "onnxruntime"}), LOCAL, "auto", gpus=1).workers == 1
    assert choose(pipeline(REMOTE, {"backend": "tensorrt"}), LOCAL, "auto", gpus=1).workers == 1
    assert choose(pipeline(PYTHON), LOCAL, "auto", gpus=1).workers == 1  # no ClassifyText at all


def test_workers_given_are_taken_and_several_configs_preload_nothing(gpu_host):
    chosen = choose(pipeline(PYTHON, {"backend": "onnxruntime"}), LOCAL, "3", gpus=0)
    assert chosen.workers == 3 and json.loads(chosen.preload.to_json()) == {"backend": "onnxruntime"}
    two = choose(pipeline(PYTHON, {"backend": "tensorrt"}, {"backend": "tensorrt", "max_seq_len": 64}), LOCAL,
                 "auto", gpus=1)
    assert two.workers == 8 and two.preload is None
    bad = choose(pipeline(PYTHON, {"backend": "tensorrt", "max_seq_len": 4096}), LOCAL, "auto", gpus=1)
    assert bad.workers == 8 and bad.preload is None  # the pipeline reports the field itself


def test_the_shipped_parquet_pipeline_is_classified_in_process():
    from conftest import ROOT

    text = (ROOT / "yaml_pipelines" / "classify_parquet.yaml").read_text()
    assert classify_configs(yaml.safe_load(text))[0]["model"] == "{{ model | default('sentiment-minilm') }}"
