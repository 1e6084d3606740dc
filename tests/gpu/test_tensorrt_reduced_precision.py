"""int8 and fp8 plans on real TensorRT: built from SST-2 train phrases by the same path as
``beam-tensorrt build``, checked by the guard, no NaN, labels of SST-2 dev within the documented
agreement with the fp16 plan; a bad calibration refused and not published."""
import numpy as np
import pytest

from conftest import read_sst2
from gpu_support import require_tensorrt


@pytest.fixture(scope="module")
def engine_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("engine_cache_reduced"))


@pytest.fixture(scope="module")
def texts(sst2_dir):
    train, _ = read_sst2(sst2_dir / "train.tsv", limit=3000)
    dev, gold = read_sst2(sst2_dir / "dev.tsv", limit=2000)
    return train, dev, np.array(gold)


# Plans of these lengths are built here (a machine's engine cache may hold the usual ones already), from
# the machine's timing cache, so each build takes seconds.
MAX_SEQ_LEN = 96
REFUSED_MAX_SEQ_LEN = 88


def _labels(artifact, engine_cache, precision, texts):
    from beam_tensorrt.backends import BackendOptions
    from beam_tensorrt.classifier import TextClassifier

    clf = TextClassifier.open(artifact, "tensorrt", BackendOptions(engine_cache=engine_cache, precision=precision,
                                                                   max_seq_len=MAX_SEQ_LEN))
    try:
        logits, _, failures = clf.logits(texts)
    finally:
        clf.close()
    assert not failures and not np.isnan(logits).any()
    return logits.argmax(axis=1), clf


@pytest.mark.parametrize("precision", ["int8", "fp8"])
def test_reduced_precision_plan_agrees_with_fp16(default_artifact, engine_cache, texts, precision):
    require_tensorrt()
    from beam_tensorrt.backends import BackendOptions
    from beam_tensorrt.backends.tensorrt.loader import plan_for
    from beam_tensorrt.backends.tensorrt.metadata import PlanMetadata
    from beam_tensorrt.build.quantize import QuantizeRequest
    from beam_tensorrt.errors import ConfigError

    train, dev, gold = texts
    options = BackendOptions(engine_cache=engine_cache, precision=precision, max_seq_len=MAX_SEQ_LEN)
    try:
        plan, _ = plan_for(default_artifact, options, QuantizeRequest.from_texts(train))
    except ConfigError as e:  # e.g. fp8 on a GPU older than Ada
        pytest.skip(str(e))
    meta = PlanMetadata.read(plan)
    assert meta.precision == precision and meta.calibration["guard"]["agreement"] >= 0.99
    fp16, _ = _labels(default_artifact, engine_cache, "fp16", dev)
    reduced, clf = _labels(default_artifact, engine_cache, precision, dev)
    assert clf.session.meta.precision == precision
    agreement = float((reduced == fp16).mean())
    accuracy, fp16_accuracy = float((reduced == gold).mean()), float((fp16 == gold).mean())
    print(f"{precision}: agreement with fp16 {agreement:.4f}, accuracy {accuracy:.4f} (fp16 {fp16_accuracy:.4f})")
    assert agreement >= 0.99 and accuracy >= fp16_accuracy - 0.005


def test_a_bad_calibration_is_refused_and_not_published(default_artifact, texts, tmp_path, monkeypatch):
    require_tensorrt()
    from beam_tensorrt.backends import BackendOptions
    from beam_tensorrt.backends.tensorrt import calibration
    from beam_tensorrt.backends.tensorrt.loader import plan_for
    from beam_tensorrt.build.quantize import QuantizeRequest
    from beam_tensorrt.errors import PlanNotBuilt, PrecisionRefused

    real = calibration.Calibration.amax
    monkeypatch.setattr(calibration.Calibration, "amax", lambda self, p: [a / 200 for a in real(self, p)])
    options = BackendOptions(engine_cache=str(tmp_path / "engines"), precision="int8", max_seq_len=REFUSED_MAX_SEQ_LEN)
    with pytest.raises(PrecisionRefused, match="int8 plan refused"):
        plan_for(default_artifact, options, QuantizeRequest.from_texts(texts[0][:1000]))
    with pytest.raises(PlanNotBuilt):
        plan_for(default_artifact, options)
