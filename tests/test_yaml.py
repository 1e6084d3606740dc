"""Every pipeline in yaml_pipelines/ run end to end with `python -m apache_beam.yaml.main`, rows checked."""
import glob
import json
import os
import subprocess
import sys

import pytest

from conftest import EXAMPLES, ROOT
from service_fixture import start_service

PIPELINES = ROOT / "yaml_pipelines"


def run_yaml(pipeline, variables: dict, timeout=600):
    proc = subprocess.run(
        [sys.executable, "-m", "apache_beam.yaml.main", f"--yaml_pipeline_file={pipeline}",
         "--runner=FnApiRunner", f"--jinja_variables={json.dumps(variables)}"],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def read_json_outputs(prefix) -> list[dict]:
    rows = []
    for path in sorted(glob.glob(f"{prefix}*")):
        with open(path, encoding="utf-8") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


def test_every_pipeline_has_a_test():
    tested = {"classify_texts", "classify_with_errors", "classify_csv", "classify_remote", "classify_parquet",
              "classify_run_inference", "classify_kafka", "classify_files"}  # tests/test_kafka_io.py
    assert {p.stem for p in PIPELINES.glob("*.yaml")} == tested


def test_parquet_to_parquet_keeps_every_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": pa.array([1, 2], pa.int32()), "review": ["a lovely film", "a dull mess"]}),
                   tmp_path / "in.parquet")
    run_yaml(PIPELINES / "classify_parquet.yaml", {"input": str(tmp_path / "in.parquet"), "text_field": "review",
                                                   "output": str(tmp_path / "out")})
    rows = [r for path in sorted(glob.glob(f"{tmp_path / 'out'}*")) for r in pq.read_table(path).to_pylist()]
    assert sorted((r["id"], r["review"], r["label"]) for r in rows) == [(1, "a lovely film", "POSITIVE"),
                                                                       (2, "a dull mess", "NEGATIVE")]


def test_texts_to_json_lines(tmp_path):
    run_yaml(PIPELINES / "classify_texts.yaml", {"input": str(EXAMPLES / "texts.txt"), "output": str(tmp_path / "out")})
    rows = read_json_outputs(tmp_path / "out")
    assert sorted((r["text"][:20], r["label"]) for r in rows) == [
        ("Great performances f", "POSITIVE"), ("I regret buying a ti", "NEGATIVE"),
        ("The story dragged on", "NEGATIVE"), ("What a wonderful sur", "POSITIVE")]
    assert all(0.5 <= r["score"] <= 1 for r in rows)


def test_error_handling_routes_bad_rows_to_their_own_sink(tmp_path):
    run_yaml(PIPELINES / "classify_with_errors.yaml", {"input": str(EXAMPLES / "reviews.jsonl"),
                                                       "output": str(tmp_path / "good"), "errors": str(tmp_path / "bad")})
    good = sorted(read_json_outputs(tmp_path / "good"), key=lambda r: r["id"])
    bad = read_json_outputs(tmp_path / "bad")
    assert [(r["id"], r["label"]) for r in good] == [(1, "POSITIVE"), (2, "NEGATIVE"), (4, "POSITIVE")]
    assert all(len(r["probabilities"]) == 2 for r in good)
    assert bad == [{"id": 3, "reason": "field 'body' is null"}]


def test_csv_with_another_text_field_and_output_names(tmp_path):
    run_yaml(PIPELINES / "classify_csv.yaml", {"input": str(EXAMPLES / "reviews.csv"), "output": str(tmp_path / "out")})
    rows = read_json_outputs(tmp_path / "out")
    assert sorted((r["title"], r["sentiment"]) for r in rows) == [
        ("Night Train", "POSITIVE"), ("Summer Song", "POSITIVE"), ("The Long Wait", "NEGATIVE")]
    assert all("label" not in r and 0.5 <= r["confidence"] <= 1 for r in rows)


def test_files_read_and_written_by_our_transforms_every_row_classified_or_on_the_errors(tmp_path):
    import csv

    source = tmp_path / "in.csv"
    source.write_bytes(b'title,review\nA,"A gripping thriller, superb."\nB,Dull and slow.\nC,"too",many,fields\n'
                       b'D,\nE,bad \xfe text\n')
    run_yaml(PIPELINES / "classify_files.yaml", {"input": str(source), "output": str(tmp_path / "out"),
                                                 "errors": str(tmp_path / "errors")})
    rows = [r for path in glob.glob(f"{tmp_path / 'out'}-*.csv") for r in csv.DictReader(open(path, newline=""))]
    assert sorted((r["title"], r["label"]) for r in rows) == [("A", "POSITIVE"), ("B", "NEGATIVE")]
    assert sorted(r["reason"] for r in read_json_outputs(tmp_path / "errors")) == [
        f"{source}, row 3: expected 2 columns, got 4",
        f"{source}, row 5: field 'review' is not valid UTF-8 (invalid start byte at byte 4)",
        "field 'review' is empty (set allow_empty_text to classify such texts)"]


def _maps(pid: int) -> str:
    with open(f"/proc/{pid}/maps") as f:
        return f.read()


def test_remote_provider_through_a_running_service(tmp_path):
    # Worker processes (the default pool's thread workers run in the README's remote block): the
    # service then never loads the model itself, it holds no ONNX Runtime.
    service = start_service(tmp_path, "--worker-processes", "--prestart", "1")
    try:
        run_yaml(PIPELINES / "classify_remote.yaml", {"input": str(EXAMPLES / "texts.txt"),
                                                      "output": str(tmp_path / "out"), "address": service.address})
        rows = read_json_outputs(tmp_path / "out")
        assert sorted(r["label"] for r in rows) == ["NEGATIVE", "NEGATIVE", "POSITIVE", "POSITIVE"]
        assert all(r["truncated"] is False for r in rows)
        assert "expanded beam:schematransform:beam_tensorrt:classify_text:v1" in service.log()
        if os.path.exists("/proc/self/maps"):
            assert "onnxruntime" not in _maps(service.proc.pid)
    finally:
        assert service.stop() == 0


def chain_pipeline(path, elements: str, classify_config: str, providers: str, sink: str = "") -> str:
    """Write a small chain pipeline Create -> ClassifyText [-> sink] and return its path."""
    path.write_text(f"""
pipeline:
  type: chain
  transforms:
    - type: Create
      config:
        elements: {elements}
    - type: ClassifyText
      config:
        {classify_config}
{sink}providers:
{providers}
""")
    return str(path)


def test_shipped_providers_file_can_be_included(tmp_path):
    path = subprocess.run([sys.executable, "-m", "beam_tensorrt.cli", "yaml-providers"], capture_output=True,
                          text=True, check=True).stdout.strip()
    pipeline = chain_pipeline(
        tmp_path / "p.yaml", '[{text: "A delightful film."}, {text: "A dreadful film."}]', "{}",
        f'  - include: "{path}"',
        sink=f'    - type: WriteToJson\n      config:\n        path: "{tmp_path / "out"}"\n')
    run_yaml(pipeline, {})
    assert sorted(r["label"] for r in read_json_outputs(tmp_path / "out")) == ["NEGATIVE", "POSITIVE"]


@pytest.mark.parametrize("config, needle", [("max_seq_len: 100000", "'max_seq_len'"), ("text_feld: x", "'text_feld'")])
def test_yaml_config_errors_name_the_field(tmp_path, config, needle):
    pipeline = chain_pipeline(tmp_path / "bad.yaml", '[{text: "x"}]', config,
                              "  - type: python\n    config: {}\n    transforms:\n"
                              "      ClassifyText: beam_tensorrt.ClassifyText")
    proc = subprocess.run([sys.executable, "-m", "apache_beam.yaml.main", f"--yaml_pipeline_file={pipeline}",
                           "--runner=FnApiRunner"], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and needle in proc.stderr


def test_beam_tensorrt_yaml_runs_a_pipeline_quietly_without_mltransform_backends(tmp_path):
    # An installed stand-in for sentence-transformers (which loads torch and transformers) that
    # leaves a mark when imported: Beam YAML's ML module imports it whenever it is installed.
    site = tmp_path / "site" / "sentence_transformers"
    site.mkdir(parents=True)
    mark = tmp_path / "imported"
    (site / "__init__.py").write_text(f"open({str(mark)!r}, 'w').close()\nSentenceTransformer = object\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")]))
    control = subprocess.run([sys.executable, "-c", "import apache_beam.yaml.yaml_ml"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
    assert control.returncode == 0 and mark.exists(), control.stderr[-2000:]
    mark.unlink()
    proc = subprocess.run([sys.executable, "-m", "beam_tensorrt.cli", "yaml", str(PIPELINES / "classify_texts.yaml"),
                           f"--jinja_variables={json.dumps({'input': str(EXAMPLES / 'texts.txt'), 'output': str(tmp_path / 'out')})}"],
                          env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(read_json_outputs(tmp_path / "out")) == 4
    assert not mark.exists()
    noise = [line for line in proc.stderr.splitlines() if "building the model" not in line
             and "built 'sentiment-minilm'" not in line]
    assert noise == [], proc.stderr  # no warnings, no INFO chatter, no traceback on a healthy run
    # Beam's file sinks leave .temp<uuid> folders beside their outputs; the command removes them.
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_beam_tensorrt_yaml_runs_on_a_pool_of_workers_with_the_model_loaded_ahead(tmp_path):
    """`beam-tensorrt yaml --workers 2`: Beam's local runner takes its SDK workers from a pool started
    for the run (what `--workers auto` picks on a GPU host), each booted with the pipeline's model."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [f"{words} ({i})" for i, words in enumerate(["a lovely, moving film", "a dull, tedious mess"] * 50)]
    pq.write_table(pa.table({"id": list(range(100)), "text": texts}), tmp_path / "in.parquet")
    variables = {"input": str(tmp_path / "in.parquet"), "output": str(tmp_path / "out"), "backend": "onnxruntime"}
    proc = subprocess.run([sys.executable, "-m", "beam_tensorrt.cli", "-v", "yaml", "--workers", "2",
                           str(PIPELINES / "classify_parquet.yaml"), f"--jinja_variables={json.dumps(variables)}"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "beam-tensorrt yaml: 2 SDK worker processes" in proc.stderr
    assert proc.stderr.count("SDK worker process") >= 2 and "started SDK worker" in proc.stderr, proc.stderr[-3000:]
    assert "loaded before the job by the worker pool" in proc.stderr  # the pipeline's model, preloaded
    rows = [r for path in sorted(glob.glob(f"{tmp_path / 'out'}*")) for r in pq.read_table(path).to_pylist()]
    assert sorted(r["id"] for r in rows) == list(range(100))
    assert all(r["label"] == ("POSITIVE" if "lovely" in r["text"] else "NEGATIVE") for r in rows)


def beam_tensorrt_yaml(pipeline, variables: dict, *beam_options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "beam_tensorrt.cli", "yaml", str(pipeline),
                           f"--jinja_variables={json.dumps(variables)}", *beam_options],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_beam_yamls_own_run_inference_with_classify_texts_handler_labels_as_classify_text(tmp_path):
    proc = beam_tensorrt_yaml(PIPELINES / "classify_run_inference.yaml",
                              {"input": str(EXAMPLES / "texts.txt"), "output": str(tmp_path / "inferred")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_yaml(PIPELINES / "classify_texts.yaml", {"input": str(EXAMPLES / "texts.txt"), "output": str(tmp_path / "ct")})
    inferred = {r["text"]: (r["label"], round(r["score"], 4)) for r in read_json_outputs(tmp_path / "inferred")}
    classified = {r["text"]: (r["label"], round(r["score"], 4)) for r in read_json_outputs(tmp_path / "ct")}
    assert len(inferred) == 4 and inferred == classified


@pytest.mark.parametrize("handler_config, texts, needle", [
    ("{max_seq_len: 4096}", ["fine"], "max_seq_len"),
    ("{backend: nope}", ["fine"], "backend"),
    ("{}", ["fine", ""], "field 'text' is empty"),
])
def test_run_inference_handler_mistakes_name_their_cause(tmp_path, handler_config, texts, needle):
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(f"""pipeline:
  type: chain
  transforms:
    - type: ReadFromText
      config: {{path: "{tmp_path / 'in.txt'}"}}
    - type: MapToFields
      config: {{language: python, fields: {{text: line}}}}
    - type: RunInference
      config:
        model_handler: {{type: ClassifyTextModelHandler, config: {handler_config}}}
    - type: WriteToJson
      config: {{path: "{tmp_path / 'out'}"}}
""")
    proc = beam_tensorrt_yaml(pipeline, {})
    assert proc.returncode != 0 and needle in proc.stderr, proc.stderr[-3000:]
