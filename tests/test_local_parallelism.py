"""The one line a pipeline on Beam's local runner logs when it classifies on a GPU from one process."""
import logging

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from beam_tensorrt import local_parallelism
from beam_tensorrt.local_parallelism import one_process_advice


@pytest.fixture
def gpu_host(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    monkeypatch.setattr("beam_tensorrt.backends.resolve_auto", lambda: "tensorrt")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")


def test_one_local_process_on_a_gpu_is_told_what_it_leaves(gpu_host):
    for args in ([], ["--runner=DirectRunner"], ["--runner=FnApiRunner"]):
        advice = one_process_advice(PipelineOptions(args), "auto")
        assert "--direct_num_workers=8 --direct_running_mode=multi_processing" in advice, args
        assert "beam-tensorrt yaml" in advice


def test_nothing_to_say_elsewhere(gpu_host, monkeypatch):
    for args in (["--runner=FlinkRunner"], ["--direct_num_workers=8", "--direct_running_mode=multi_processing"],
                 ["--direct_running_mode=multi_threading"]):
        assert one_process_advice(PipelineOptions(args), "auto") == "", args
    assert one_process_advice(PipelineOptions([]), "onnxruntime") == ""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # no GPU visible
    assert one_process_advice(PipelineOptions([]), "tensorrt") == ""


def test_a_pipeline_logs_it_once(gpu_host, monkeypatch, caplog):
    import apache_beam as beam

    from beam_tensorrt import ClassifyText

    monkeypatch.setattr(local_parallelism, "_said", type(local_parallelism._said)())
    with caplog.at_level(logging.WARNING, logger="beam_tensorrt"):
        for _ in range(2):
            p = beam.Pipeline(options=PipelineOptions([]))
            _ = p | beam.Create(["fine"]) | ClassifyText(backend="tensorrt")  # built, not run
    said = [r.getMessage() for r in caplog.records if "leaves the GPU idle" in r.getMessage()]
    assert len(said) == 1, said
