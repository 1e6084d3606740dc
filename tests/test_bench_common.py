"""The benchmarks' shared texts: the length profiles `bench.user_paths --lengths` runs at."""
import subprocess
import sys

from conftest import ROOT

from bench.common import LENGTH_PROFILES, phrases, texts_of_length


def test_length_profiles_are_the_same_texts_every_run_and_of_their_length(sst2_dir):
    assert texts_of_length(sst2_dir, "phrases") == phrases(sst2_dir)
    for profile in ("sentences", "reviews"):
        texts = texts_of_length(sst2_dir, profile, 300)
        assert texts == texts_of_length(sst2_dir, profile, 300) and len(texts) == 300
        low, high = LENGTH_PROFILES[profile]
        words = [len(t.split()) for t in texts]
        # At least the drawn length; the last phrase joined may run past it.
        assert min(words) >= low and low < sum(words) / len(words) <= high + 10, (profile, min(words), max(words))
        assert all(t.endswith(".") and t[0].isupper() for t in texts if t[0].isalpha())
    reviews = texts_of_length(sst2_dir, "reviews", 300)
    assert sum(len(t.split()) for t in reviews) / 300 > 3 * sum(len(t.split()) for t in
                                                                texts_of_length(sst2_dir, "sentences", 300)) / 300


def test_user_paths_names_an_unknown_length_profile(sst2_dir):
    proc = subprocess.run([sys.executable, "-m", "bench.user_paths", "--data", str(sst2_dir), "--lengths", "novels"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown --lengths ['novels']" in proc.stderr, proc.stderr[-2000:]


def test_missing_ids_are_reported_as_runs(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bench.common import missing_ids

    kept = [i for i in range(100) if not (10 <= i < 14 or i == 50 or i >= 97)]
    pq.write_table(pa.table({"id": kept[:40]}), tmp_path / "out-0.parquet")
    pq.write_table(pa.table({"id": kept[40:]}), tmp_path / "out-1.parquet")
    found = missing_ids(str(tmp_path / "out-*"), 100)
    assert found["missing"] == 8 and found["runs"] == 3 and found["longest_run"] == 4
    assert found["first_runs"] == [[10, 4], [50, 1], [97, 3]] and found["run_lengths"] == {1: 1, 3: 1, 4: 1}
    assert missing_ids(str(tmp_path / "out-*"), 10) == {"missing": 0}


def test_gpu_busy_is_reported_only_where_it_was_measured(tmp_path, monkeypatch):
    from bench.common import GpuBusy

    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi: no figure, and no error
    with GpuBusy() as busy:
        pass
    assert busy.summary() == {}
    # A stand-in nvidia-smi printing utilization samples as the real one does (one a line).
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\nprintf '10\\n90\\n80\\n'\nexec sleep 30\n")
    fake.chmod(0o755)
    with GpuBusy() as busy:
        import time

        time.sleep(0.5)
    assert busy.summary() == {"gpu_busy_mean": 60.0, "gpu_busy_p50": 80.0, "gpu_samples": 3}


def test_the_csv_yaml_pipelines_compared_are_the_same_but_for_their_io():
    import yaml

    from bench.user_paths import csv_pipeline

    ours, beams = (yaml.safe_load(csv_pipeline(flag, "onnxruntime", "sentiment-minilm")) for flag in (True, False))
    assert [t["type"] for t in ours["pipeline"]["transforms"]] == ["ReadFiles", "ClassifyText", "WriteFiles"]
    assert [t["type"] for t in beams["pipeline"]["transforms"]] == ["ReadFromCsv", "ClassifyText", "WriteToJson"]
    assert ours["pipeline"]["transforms"][1] == beams["pipeline"]["transforms"][1]  # ClassifyText as users write it
    assert "max_batch_size" not in ours["pipeline"]["transforms"][1]["config"]
