"""Real TensorRT on a GPU, held to the same backend contract as every backend on the CPU
(tests/test_backends.py: every length bucket, split groups, generators, concurrent callers),
with CUDA graphs on and off, plans for max_seq_len 256 and 512 built through the engine cache, and
ClassifyText(backend='tensorrt') in a Beam pipeline over SST-2 dev against ONNX Runtime."""
import numpy as np
import pytest

from gpu_support import require_tensorrt
from test_backends import (  # noqa: F401  (collected here with this module's `session`)
    TEXTS, reference, test_classifier_on_the_backend_labels_like_onnxruntime,
    test_concurrent_callers_get_their_own_results, test_declares_what_the_classifier_relies_on,
    test_run_is_one_group_of_run_many, test_run_many_consumes_a_generator_once_in_order)


@pytest.fixture
def atol():
    return 0.02  # an fp16 plan against ONNX Runtime fp32


@pytest.fixture(scope="module")
def engine_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("engine_cache"))


def open_trt(artifact, engine_cache, max_seq_len, cuda_graphs=True, packing=True):
    from beam_tensorrt.backends import BackendOptions, open_session
    from beam_tensorrt.backends.tensorrt.metadata import EngineMismatch

    try:
        return open_session("tensorrt", artifact, BackendOptions(max_seq_len=max_seq_len, engine_cache=engine_cache,
                                                                 cuda_graphs=cuda_graphs, packing=packing))
    except EngineMismatch as e:  # e.g. TensorRT-RTX on compute capability 9.0
        pytest.skip(f"this TensorRT cannot run plans on this GPU: {e}")


@pytest.fixture(params=["packed", "packed-no-graphs", "padded", "padded-no-graphs"])
def session(request, default_artifact, engine_cache):
    require_tensorrt()
    s = open_trt(default_artifact, engine_cache, 256, cuda_graphs="no-graphs" not in request.param,
                 packing=request.param.startswith("packed"))
    assert s.packed == request.param.startswith("packed")
    yield s
    s.close()


@pytest.mark.parametrize("max_seq_len, packing", [(256, True), (512, True), (512, False)])
def test_every_bucket_up_to_max_seq_len_matches_onnxruntime(default_artifact, engine_cache, max_seq_len, packing):
    require_tensorrt()
    from beam_tensorrt.backends import BackendOptions
    from beam_tensorrt.classifier import TextClassifier

    session = open_trt(default_artifact, engine_cache, max_seq_len, packing=packing)
    assert max(p.max_seq for p in session.profiles) == max_seq_len and session.packed == packing
    # one text per bucket edge (in tokens), plus ragged ones; twice, so graphs are replayed too
    edges = sorted({p.min_seq for p in session.profiles} | {p.max_seq for p in session.profiles})
    texts = TEXTS + [" ".join(["word"] * max(1, e - 2)) for e in edges] + ["w " * (max_seq_len + 50)]
    clf = TextClassifier(default_artifact, session, max_seq_len)
    for _ in range(4):
        ours, cut, failures = clf.logits(texts * 3)
    ref = TextClassifier.open(default_artifact, "onnxruntime", BackendOptions(max_seq_len=max_seq_len)).logits(texts * 3)[0]
    assert not failures and np.isfinite(ours).all()
    assert cut[-1] and not cut[0]
    assert (ours.argmax(1) == ref.argmax(1)).all()
    assert np.abs(ours - ref).max() < 0.05  # fp16 plan vs fp32 reference
    session.close()


@pytest.mark.parametrize("packing", [True, False])
def test_pipeline_over_sst2_dev_agrees_with_onnxruntime(default_artifact, engine_cache, sst2_dir, tmp_path, packing):
    """ClassifyText(backend='tensorrt') in a Beam pipeline over all of SST-2 dev: >= 99.9% of the
    labels as ONNX Runtime's, no row lost, no NaN; packed and padded."""
    require_tensorrt()
    import json

    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from beam_tensorrt import ClassifyText
    from beam_tensorrt.classifier import TextClassifier
    from conftest import read_sst2

    texts, _ = read_sst2(sst2_dir / "dev.tsv")
    out = tmp_path / "labels"
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        result = (p | beam.Create([{"i": i, "text": t} for i, t in enumerate(texts)])
                    | ClassifyText(backend="tensorrt", engine_cache=engine_cache, max_batch_size=256, packing=packing,
                                   probabilities_field="p", error_handling={"output": "errors"}))
        (result["output"]
           | beam.Map(lambda r: json.dumps([r.i, r.label, r.p]))
           | beam.io.WriteToText(str(out), shard_name_template=""))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(i for i, _, _ in rows) == list(range(len(texts)))
    assert all(np.isfinite(p).all() for _, _, p in rows)
    want = [p.label for p in TextClassifier.open(default_artifact, "onnxruntime").classify(texts)]
    got = dict((i, label) for i, label, _ in rows)
    agreement = np.mean([got[i] == want[i] for i in range(len(texts))])
    print(f"TensorRT pipeline ({'packed' if packing else 'padded'}) vs ONNX Runtime on {len(texts)} SST-2 dev rows: "
          f"label agreement {agreement:.5f}")
    assert agreement >= 0.999


def test_arrow_batches_over_sst2_dev_agree_with_onnxruntime(default_artifact, engine_cache, sst2_dir, tmp_path):
    """ClassifyTextBatches(backend='tensorrt') on SST-2 dev read from Parquet as Arrow tables:
    >= 99.9% of the labels as ONNX Runtime's, every row out once, no NaN."""
    require_tensorrt()
    import apache_beam as beam
    import pyarrow as pa
    import pyarrow.parquet as pq
    from apache_beam.options.pipeline_options import PipelineOptions

    from beam_tensorrt import ClassifyTextBatches
    from beam_tensorrt.classifier import TextClassifier
    from conftest import read_sst2

    texts, _ = read_sst2(sst2_dir / "dev.tsv")
    pq.write_table(pa.table({"i": list(range(len(texts))), "text": texts}), tmp_path / "dev.parquet",
                   row_group_size=1000)
    out = tmp_path / "labels.parquet"
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        result = (p | beam.io.ReadFromParquetBatched(str(tmp_path / "dev.parquet"))
                    | ClassifyTextBatches(backend="tensorrt", engine_cache=engine_cache, probabilities_field="p",
                                          error_handling={"output": "errors"}))
        _ = (result["output"] | beam.combiners.ToList()
               | beam.Map(lambda tables: pq.write_table(pa.concat_tables(tables), str(out))))
    got = pq.read_table(out).to_pydict()
    assert sorted(got["i"]) == list(range(len(texts)))
    assert np.isfinite(np.array(got["p"])).all()
    want = [p.label for p in TextClassifier.open(default_artifact, "onnxruntime").classify(texts)]
    labels = dict(zip(got["i"], got["label"]))
    agreement = np.mean([labels[i] == want[i] for i in range(len(texts))])
    print(f"TensorRT ClassifyTextBatches vs ONNX Runtime on {len(texts)} SST-2 dev rows: label agreement {agreement:.5f}")
    assert agreement >= 0.999
