"""int8 and fp8 plans, on the CPU: the config field, the GPU check, the calibration and Q/DQ graph
(run for real by ONNX Runtime, which computes Q/DQ graphs too), the accuracy guard, and the build
path through the engine cache with TensorRT faked (tests/gpu builds real plans)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import read_sst2

from beam_tensorrt.backends.tensorrt.metadata import PlanMetadata
from beam_tensorrt.build.quantize import QuantizeRequest
from beam_tensorrt.build.guard import guard
from beam_tensorrt.backends.tensorrt.spec import check_gpu
from beam_tensorrt.errors import ConfigError, PlanNotBuilt, PrecisionRefused
from beam_tensorrt.config import ClassifyTextConfig


def test_precision_is_a_config_field_that_reaches_the_backend_and_reduced_needs_tensorrt():
    assert ClassifyTextConfig().validate().backend_options().precision == "fp16"
    config = ClassifyTextConfig(backend="tensorrt", precision="fp8").validate()
    assert config.backend_options().precision == "fp8"
    with pytest.raises(ConfigError, match="precision.*TensorRT alone.*onnxruntime") as e:
        ClassifyTextConfig(backend="onnxruntime", precision="int8").validate()
    assert e.value.field == "precision"
    with pytest.raises(ConfigError, match="'bf16' is not one of fp16, fp32, int8, fp8"):
        ClassifyTextConfig(precision="bf16").validate()


def test_the_gpu_check_names_the_gpu():
    check_gpu("fp8", "NVIDIA H200", "9.0")
    check_gpu("fp8", "NVIDIA L4", "8.9")
    check_gpu("int8", "Tesla T4", "7.5")
    check_gpu("fp16", "Tesla V100", "7.0")
    with pytest.raises(ConfigError, match=r"fp8 needs a GPU of compute capability 8\.9 or newer; this worker's "
                                          r"NVIDIA A100-SXM4-80GB is 8\.0") as e:
        check_gpu("fp8", "NVIDIA A100-SXM4-80GB", "8.0")
    assert e.value.field == "precision"
    with pytest.raises(ConfigError, match="int8 needs .* 7.5 .* Tesla V100"):
        check_gpu("int8", "Tesla V100", "7.0")


def test_guard_measures_agreement_and_refuses_below_the_threshold_or_on_nan():
    fp16 = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0], [0.0, 1.0]])
    same_labels = fp16 * 0.9
    figures = guard("int8", fp16, same_labels, 0.99)
    assert figures.agreement == 1.0 and figures.nan_rows == 0 and figures.rows == 4
    one_flipped = same_labels.copy()
    one_flipped[2] = [0.0, 1.0]
    assert guard("int8", fp16, one_flipped, 0.75).agreement == 0.75
    with pytest.raises(PrecisionRefused, match=r"agree with fp16 on 75.00% of 4 held-out texts, under the threshold "
                                               r"99.00%") as e:
        guard("int8", fp16, one_flipped, 0.99)
    assert e.value.figures.agreement == 0.75
    with_nan = same_labels.copy()
    with_nan[0] = [np.nan, np.nan]
    with pytest.raises(PrecisionRefused, match="1 rows gave NaN"):
        guard("fp8", fp16, with_nan, 0.5)


def test_every_fifth_text_is_held_out_for_the_guard():
    texts = [f"text {i}" for i in range(12)] + ["   "]
    request = QuantizeRequest.from_texts(texts)
    assert request.guard_texts == ["text 4", "text 9"]
    assert request.calibration_texts == [f"text {i}" for i in range(12) if i not in (4, 9)]
    with pytest.raises(ValueError, match="3 non-empty calibration texts are too few"):
        QuantizeRequest.from_texts(["a", "b", "c"])


@pytest.fixture(scope="module")
def sst2_texts(sst2_dir):
    train, _ = read_sst2(sst2_dir / "train.tsv", limit=300)
    dev, gold = read_sst2(sst2_dir / "dev.tsv", limit=160)
    return train, dev, np.array(gold)


@pytest.fixture(scope="module")
def calibration(default_artifact, sst2_texts):
    from beam_tensorrt.build.calibration import calibrate

    return calibrate(default_artifact, QuantizeRequest.from_texts(sst2_texts[0]).calibration_texts, 128)


@pytest.fixture(scope="module")
def fp32_graph_and_dev_logits(default_artifact, sst2_texts):
    import onnx

    fp32 = onnx.load(str(default_artifact.onnx_path))
    return fp32, _run(fp32, default_artifact, sst2_texts[1])


def _run(onnx_model, artifact, texts):
    import onnxruntime as ort

    from beam_tensorrt.tokenization import TextTokenizer

    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    tokenizer = TextTokenizer(artifact.tokenizer_path, 128)
    return np.concatenate([session.run(None, tokenizer(texts[i:i + 64]).feeds(names))[0]
                           for i in range(0, len(texts), 64)])


@pytest.mark.parametrize("precision", ["int8", "fp8"])
def test_quantized_graph_labels_sst2_dev_as_fp32_does(default_artifact, sst2_texts, calibration, precision,
                                                       fp32_graph_and_dev_logits):
    from beam_tensorrt.build.qdq import quantize, quantizable_matmuls

    fp32, reference = fp32_graph_and_dev_logits
    gemms = len(quantizable_matmuls(fp32.graph))
    assert gemms == 6 * 6 + 1 == len(calibration.activation_max)  # six layers of six GEMMs, the pooler's dense
    quantized = quantize(fp32, calibration.amax(precision), precision, calibration.gemm_shapes)
    ops = [n.op_type for n in quantized.graph.node]
    # Every GEMM's weight quantized; Q, K and V share one quantized input per layer.
    assert ops.count("QuantizeLinear") == gemms + (gemms - 6 * 2)
    _, dev, gold = sst2_texts
    logits = _run(quantized, default_artifact, dev)
    figures = guard(precision, reference, logits, 0.97)
    accuracy = float((logits.argmax(1) == gold).mean())
    assert accuracy >= float((reference.argmax(1) == gold).mean()) - 0.02 and figures.nan_rows == 0


def test_a_bad_calibration_is_refused_by_the_guard(default_artifact, sst2_texts, calibration,
                                                   fp32_graph_and_dev_logits):
    from beam_tensorrt.build.qdq import quantize

    fp32, reference = fp32_graph_and_dev_logits
    _, dev, _ = sst2_texts
    clipped = [a / 200 for a in calibration.amax("int8")]  # activations cut to a 200th of their range
    with pytest.raises(PrecisionRefused):
        guard("int8", reference, _run(quantize(fp32, clipped, "int8"), default_artifact, dev))
    with pytest.raises(ValueError, match="other GEMM weight shapes"):
        quantize(fp32, calibration.amax("int8"), "int8", [[1, 1]] * len(clipped))


def _fake_build_engine(tmp_path, built: list):
    """Stands in for ``builder.build_engine``: a fake plan running the (quantized) graph it is given."""
    import fake_tensorrt

    def build_engine(onnx_path, plan_path, profiles, *, precision, timing_cache=None, say=None, **_):
        kept = tmp_path / f"{len(built)}-{Path(onnx_path).name}"  # the build's own folder is removed after
        shutil.copyfile(onnx_path, kept)
        built.append(precision)
        fake_tensorrt.write_fake_plan(plan_path, kept, 2, profiles)
        name, major, minor = fake_tensorrt.GPU
        return PlanMetadata(trt_module="tensorrt", trt_version=fake_tensorrt.TRT_VERSION, gpu_name=name,
                            compute_capability=f"{major}.{minor}", onnx_sha256="", precision=precision,
                            profiles=[p.to_dict() for p in profiles])
    return build_engine


def test_an_int8_plan_is_built_only_with_calibration_texts_checked_and_found_by_workers(
        default_artifact, sst2_texts, tmp_path, monkeypatch, packed_onnx):
    import fake_tensorrt
    from test_backends_tensorrt import fake_builder

    from beam_tensorrt.backends import BackendOptions, open_session
    from beam_tensorrt.backends.tensorrt.loader import plan_for

    fake_tensorrt.install(monkeypatch)
    monkeypatch.setenv("BEAM_TENSORRT_CACHE", str(tmp_path / "machine"))
    fp16_builds: list = []
    quantized_builds: list = []
    monkeypatch.setattr("beam_tensorrt.backends.tensorrt.builder.build_plan", fake_builder(fp16_builds, packed_onnx))
    monkeypatch.setattr("beam_tensorrt.build.quantize.build_engine",
                        _fake_build_engine(tmp_path, quantized_builds))
    options = BackendOptions(precision="int8", engine_cache=str(tmp_path / "shared"))
    with pytest.raises(PlanNotBuilt, match="no int8 plan .* beam-tensorrt build --precision int8 --calibration-texts"):
        open_session("tensorrt", default_artifact, options)
    assert quantized_builds == []

    # A calibration that clips every activation is refused: nothing is published.
    real_amax = __import__("beam_tensorrt.build.calibration", fromlist=["Calibration"]).Calibration.amax
    monkeypatch.setattr("beam_tensorrt.build.calibration.Calibration.amax",
                        lambda self, p: [a / 200 for a in real_amax(self, p)])
    request = QuantizeRequest.from_texts(sst2_texts[0][:150])
    with pytest.raises(PrecisionRefused):
        plan_for(default_artifact, options, request)
    # Only the fp16 reference plan is in the caches.
    assert len(list((tmp_path / "shared").glob("*.plan"))) == len(list((tmp_path / "machine").rglob("*.plan"))) == 1
    monkeypatch.setattr("beam_tensorrt.build.calibration.Calibration.amax", real_amax)

    plan, _ = plan_for(default_artifact, options, request)
    meta = PlanMetadata.read(plan)
    assert meta.precision == "int8" and meta.layout == "packed"
    assert meta.calibration["texts"] == len(request.calibration_texts)
    assert meta.calibration["scheme"] == __import__("beam_tensorrt.backends.tensorrt.spec", fromlist=["SCHEME"]).SCHEME
    assert meta.calibration["guard"]["rows"] == len(request.guard_texts) == 30
    assert meta.calibration["guard"]["agreement"] >= 0.97
    assert quantized_builds == ["int8", "int8"] and len(fp16_builds) == 1  # the fp16 reference built once
    # Another machine's worker finds the int8 plan in the shared cache: nothing is built.
    monkeypatch.setenv("BEAM_TENSORRT_CACHE", str(tmp_path / "machine2"))
    session = open_session("tensorrt", default_artifact, options)
    assert session.meta.precision == "int8" and len(quantized_builds) == 2
    session.close()


def test_build_cli_asks_for_calibration_texts(tmp_path):
    def build(*flags):
        return subprocess.run([sys.executable, "-m", "beam_tensorrt.cli", "build", *flags],
                              capture_output=True, text=True)

    done = build("--precision", "int8")
    assert done.returncode == 2
    assert "--precision int8 needs --calibration-texts FILE" in done.stderr
    texts = tmp_path / "texts.txt"
    texts.write_text("a fine film\n")
    done = build("--precision", "fp16", "--calibration-texts", str(texts))
    assert done.returncode == 2 and "calibrates int8 and fp8 plans; --precision is fp16" in done.stderr
    done = build("--precision", "fp8", "--calibration-texts", str(texts))
    assert done.returncode == 2 and "--calibration-texts: 1 non-empty calibration texts are too few" in done.stderr

