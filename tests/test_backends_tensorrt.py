"""TensorRT support that needs no GPU: profiles, plan metadata checks, cache keys, the engine cache's
atomic publish and sharing, and a static check of the TensorRT code against tensorrt-stubs."""
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from beam_tensorrt.backends import BackendOptions
from beam_tensorrt.backends.tensorrt.engine_cache import EngineCache
from beam_tensorrt.backends.tensorrt.metadata import EngineMismatch, PlanMetadata, RuntimeInfo, cache_key, metadata_path, mismatches
from beam_tensorrt.backends.tensorrt.profiles import Profile, default_profiles, max_rows_for, select_profile
from conftest import ROOT

H100 = RuntimeInfo("tensorrt", "10.13.0.35", "NVIDIA H100 80GB HBM3", "9.0")


def test_default_profiles_cover_every_length_and_shrink_rows_for_long_text():
    profiles = default_profiles(max_seq_len=512, max_batch=256)
    assert [(p.min_seq, p.max_seq) for p in profiles] == [(1, 32), (33, 64), (65, 128), (129, 256), (257, 512)]
    for seq in range(8, 513, 8):
        assert max_rows_for(profiles, seq) >= 1
        chosen = profiles[select_profile(profiles, 1, seq)]
        assert chosen.min_seq <= seq <= chosen.max_seq and chosen.max_seq < 2 * max(seq, 32)
    assert max_rows_for(profiles, 16) == 256 and max_rows_for(profiles, 512) == 64
    assert all(p.min_seq <= p.opt_seq <= p.max_seq and p.min_batch <= p.opt_batch <= p.max_batch for p in profiles)


def test_select_profile_picks_the_narrowest_and_refuses_uncovered_shapes():
    profiles = [Profile(1, 64, 256, 1, 16, 32), Profile(1, 64, 256, 1, 64, 128)]
    assert select_profile(profiles, 10, 24) == 0
    assert select_profile(profiles, 10, 96) == 1
    with pytest.raises(ValueError, match="no optimization profile covers batch 300"):
        select_profile(profiles, 300, 24)


def meta(**over) -> PlanMetadata:
    base = dict(trt_module="tensorrt", trt_version="10.13.0.35", gpu_name="NVIDIA H100 80GB HBM3",
                compute_capability="9.0", onnx_sha256="a" * 64, precision="fp16",
                profiles=[p.to_dict() for p in default_profiles()])
    base.update(over)
    return PlanMetadata(**base)


def test_metadata_mismatches_say_what_differs():
    assert mismatches(meta(), H100, "a" * 64, default_profiles()) == []
    problems = mismatches(meta(compute_capability="8.9", gpu_name="NVIDIA L4"), H100)
    assert problems == ["built for compute capability 8.9 (NVIDIA L4), this GPU is 9.0 (NVIDIA H100 80GB HBM3)"]
    assert "TensorRT 10.0.1" in mismatches(meta(trt_version="10.0.1"), H100)[0]
    assert "ONNX" in mismatches(meta(), H100, "b" * 64)[0]
    assert "profiles" in mismatches(meta(), H100, None, default_profiles(max_seq_len=512))[0]
    assert "same compute capability" in mismatches(meta(gpu_name="NVIDIA H200"), H100)[0]


def test_cache_key_changes_with_everything_that_makes_a_plan_different():
    base = cache_key("a" * 64, H100, default_profiles(), "fp16")
    assert base == cache_key("a" * 64, H100, default_profiles(), "fp16")
    variants = [cache_key("b" * 64, H100, default_profiles(), "fp16"),
                cache_key("a" * 64, RuntimeInfo("tensorrt", "10.14", H100.gpu_name, "9.0"), default_profiles(), "fp16"),
                cache_key("a" * 64, RuntimeInfo("tensorrt", H100.trt_version, "NVIDIA L4", "8.9"), default_profiles(), "fp16"),
                cache_key("a" * 64, H100, default_profiles(max_seq_len=256), "fp16"),
                cache_key("a" * 64, H100, default_profiles(), "fp32")]
    assert len({base, *variants}) == 6


def fake_build(calls, delay=0.2, payload=b"PLAN"):
    """Stands in for TensorRT's builder: the cache logic under test is ours, the bytes are opaque."""
    def build(path: Path, timing_cache: Path) -> PlanMetadata:
        calls.append(path)
        time.sleep(delay)
        path.write_bytes(payload)
        return meta()
    return build


def test_local_cache_builds_once_under_concurrency_and_publishes_atomically(tmp_path):
    cache = EngineCache(local=tmp_path / "engines")
    calls, results = [], []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_build("k1", fake_build(calls))))
               for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(calls) == 1 and len(set(results)) == 1
    plan = results[0]
    assert plan.read_bytes() == b"PLAN"
    assert json.loads(Path(metadata_path(plan)).read_text())["plan_sha256"]
    assert sorted(p.name for p in (tmp_path / "engines").iterdir() if not p.name.startswith(".")) == [
        "k1.plan", "k1.plan.json"]


def test_corrupt_local_plan_is_rebuilt(tmp_path):
    cache = EngineCache(local=tmp_path / "engines")
    calls = []
    plan = cache.get_or_build("k", fake_build(calls))
    plan.write_bytes(b"garbage")
    cache.get_or_build("k", fake_build(calls))
    assert len(calls) == 2 and plan.read_bytes() == b"PLAN"


def test_shared_location_lets_a_second_machine_fetch_instead_of_building(tmp_path):
    shared = str(tmp_path / "shared")
    first = EngineCache(shared=shared, local=tmp_path / "machine1")
    calls = []
    first.get_or_build("k", fake_build(calls))
    assert sorted(p.name for p in Path(shared).iterdir()) == ["k.plan", "k.plan.json"]  # lease removed
    second = EngineCache(shared=shared, local=tmp_path / "machine2")
    plan = second.get_or_build("k", fake_build(calls))
    assert len(calls) == 1 and plan.read_bytes() == b"PLAN"
    # a shared plan that does not match its metadata is ignored and rebuilt
    (Path(shared) / "k.plan").write_bytes(b"tampered")
    third = EngineCache(shared=shared, local=tmp_path / "machine3")
    assert third.get_or_build("k", fake_build(calls)).read_bytes() == b"PLAN" and len(calls) == 2


def test_the_local_cache_named_as_the_shared_one_keeps_its_plans(tmp_path):
    # Found on an H200: --engine-cache naming the local cache directory copied each new plan (and its
    # metadata) onto itself, leaving both empty, and the worker then failed on "corrupt metadata".
    local = tmp_path / "engines"
    calls = []
    for shared in (str(local), str(local) + "/", str(tmp_path / "x" / ".." / "engines")):
        cache = EngineCache(shared=shared, local=local)
        plan = cache.get_or_build("k", fake_build(calls))
        assert plan.read_bytes() == b"PLAN"
        assert PlanMetadata.read(plan).plan_sha256
    assert len(calls) == 1


def test_a_machine_waits_for_anothers_build_lease(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "k.building").write_text(json.dumps({"host": "other", "pid": 1, "since": time.time()}))
    waiter = EngineCache(shared=str(shared), local=tmp_path / "m2", poll_seconds=0.1)
    calls = []

    def other_machine_finishes():
        time.sleep(0.5)
        src = EngineCache(local=tmp_path / "m1").get_or_build("k", fake_build([]))
        shutil.copy(src, shared / "k.plan")
        shutil.copy(metadata_path(src), shared / "k.plan.json")

    t = threading.Thread(target=other_machine_finishes)
    t.start()
    plan = waiter.get_or_build("k", fake_build(calls))
    t.join()
    assert calls == [] and plan.read_bytes() == b"PLAN"


def test_stale_lease_is_taken_over(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "k.building").write_text(json.dumps({"host": "dead", "pid": 1, "since": time.time() - 10_000}))
    calls = []
    EngineCache(shared=str(shared), local=tmp_path / "m", lease_seconds=60).get_or_build("k", fake_build(calls))
    assert len(calls) == 1 and not (shared / "k.building").exists()


def test_plan_without_metadata_is_a_clear_error(tmp_path):
    (tmp_path / "x.plan").write_bytes(b"p")
    with pytest.raises(EngineMismatch, match="has no metadata file"):
        PlanMetadata.read(tmp_path / "x.plan")


def test_tensorrt_code_type_checks_against_tensorrt_stubs():
    pytest.importorskip("tensorrt_stubs", reason="tensorrt-stubs is installed by `make test`")
    proc = subprocess.run([sys.executable, "-m", "mypy", "provider/beam_tensorrt/backends/tensorrt",
                           "provider/beam_tensorrt/build"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success" in proc.stdout


def test_tensorrt_backend_without_tensorrt_is_a_clear_error(default_artifact):
    from beam_tensorrt.backends import open_session
    from beam_tensorrt.errors import TensorRTUnavailable

    with pytest.raises(TensorRTUnavailable, match="no usable TensorRT module"):
        open_session("tensorrt", default_artifact)


def fake_builder(built: list, packed_onnx=None):
    """Stands in for ``builder.build_plan``: records what it was asked for and what timing cache it
    started from, writes a fake plan (of the packed graph when asked to pack), and grows the timing
    cache."""
    import fake_tensorrt

    def build(artifact, spec, plan_path, *, timing_cache, trt_module=None):
        precision, profiles, packing = spec.precision, spec.profiles, spec.layout == "packed"
        before = timing_cache.read_bytes() if timing_cache.is_file() else b""
        built.append({"profiles": list(profiles), "timing_cache_before": before, "packing": packing})
        onnx_path = packed_onnx if packing else artifact.onnx_path
        fake_tensorrt.write_fake_plan(plan_path, onnx_path, len(artifact.manifest.labels), profiles)
        timing_cache.write_bytes(before + b"tactics;")
        name, major, minor = fake_tensorrt.GPU
        return PlanMetadata(trt_module="tensorrt", trt_version=fake_tensorrt.TRT_VERSION, gpu_name=name,
                            compute_capability=f"{major}.{minor}", onnx_sha256=artifact.manifest.onnx_sha256,
                            precision=precision, profiles=[p.to_dict() for p in profiles],
                            timing_cache_bytes_before=len(before))
    return build


def test_max_seq_len_reaches_the_plan_and_the_timing_cache_is_shared(default_artifact, tmp_path, monkeypatch,
                                                                    packed_onnx):
    import fake_tensorrt
    from beam_tensorrt.backends import BackendOptions, open_session

    fake_tensorrt.install(monkeypatch)
    built: list = []
    monkeypatch.setattr("beam_tensorrt.backends.tensorrt.builder.build_plan", fake_builder(built, packed_onnx))
    shared = str(tmp_path / "shared")
    monkeypatch.setenv("BEAM_TENSORRT_CACHE", str(tmp_path / "machine1"))
    session = open_session("tensorrt", default_artifact, BackendOptions(max_seq_len=256, engine_cache=shared,
                                                                        packing=False))
    assert [p.max_seq for p in session.profiles] == [32, 64, 128, 256] and session.max_seq == 256
    assert not session.packed and built[0]["packing"] is False
    assert built[0]["timing_cache_before"] == b""  # the very first build tunes from scratch
    session.close()
    # The same model and GPU on another machine: the plan is fetched, nothing is built.
    monkeypatch.setenv("BEAM_TENSORRT_CACHE", str(tmp_path / "machine2"))
    open_session("tensorrt", default_artifact, BackendOptions(max_seq_len=256, engine_cache=shared,
                                                              packing=False)).close()
    assert len(built) == 1
    # Packed, on a third machine: another plan (packed profiles), built from the timing cache the first
    # build shared.
    monkeypatch.setenv("BEAM_TENSORRT_CACHE", str(tmp_path / "machine3"))
    session = open_session("tensorrt", default_artifact, BackendOptions(max_seq_len=512, engine_cache=shared))
    assert session.max_seq == 512 and session.packed and len(built) == 2 and built[1]["packing"] is True
    assert [(p.min_seq, p.max_seq) for p in session.profiles] == [(1, 128), (129, 256), (257, 512)]
    assert built[1]["timing_cache_before"] == b"tactics;"
    assert sorted(p.name for p in Path(shared).iterdir() if p.name.startswith("timing-")) == [
        f"timing-{EngineCache.timing_key(session_runtime())}.cache"]
    assert (Path(shared) / f"timing-{EngineCache.timing_key(session_runtime())}.cache").read_bytes() == b"tactics;" * 2
    session.close()


def session_runtime() -> RuntimeInfo:
    import fake_tensorrt

    name, major, minor = fake_tensorrt.GPU
    return RuntimeInfo("tensorrt", fake_tensorrt.TRT_VERSION, name, f"{major}.{minor}")


def test_classify_text_with_backend_tensorrt_in_a_pipeline(default_artifact, tmp_path, monkeypatch, packed_onnx):
    """ClassifyText(backend='tensorrt') end to end in a Beam pipeline: same labels as ONNX Runtime,
    max_seq_len honoured, no row lost (TensorRT and CUDA faked; the logits are the model's)."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to

    import fake_tensorrt
    from beam_tensorrt import ClassifyText
    from beam_tensorrt.classifier import TextClassifier

    fake_tensorrt.install(monkeypatch)
    built: list = []
    monkeypatch.setattr("beam_tensorrt.backends.tensorrt.builder.build_plan", fake_builder(built, packed_onnx))
    monkeypatch.setenv("BEAM_TENSORRT_CACHE", str(tmp_path / "machine"))
    texts = [f"{t} {i}" for i in range(16) for t in ("a warm, funny film", "a tedious mess", "word " * 150)]
    want = TextClassifier.open(default_artifact, "onnxruntime", BackendOptions(max_seq_len=256)).classify(texts)
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        out = (p | beam.Create([{"i": i, "text": t} for i, t in enumerate(texts)])
                 | ClassifyText(backend="tensorrt", max_seq_len=256, max_batch_size=32, truncated_field="cut",
                                engine_cache=str(tmp_path / "shared")))
        assert_that(out | beam.Map(lambda r: (r.i, r.label, r.cut)),
                    equal_to([(i, w.label, w.truncated) for i, w in enumerate(want)]))
    assert [p.max_seq for p in built[0]["profiles"]][-1] == 256 and built[0]["packing"] is True


def test_a_failed_build_releases_its_lease(tmp_path):
    """Another machine must not wait (up to the lease's 15 minutes) for a build that failed."""
    shared = tmp_path / "shared"

    def broken(path, timing_cache):
        raise RuntimeError("TensorRT's ONNX parser rejected the model")

    with pytest.raises(RuntimeError, match="parser rejected"):
        EngineCache(shared=str(shared), local=tmp_path / "m1").get_or_build("k", broken)
    assert not (shared / "k.building").exists()
    calls = []
    start = time.monotonic()
    EngineCache(shared=str(shared), local=tmp_path / "m2", poll_seconds=0.1).get_or_build("k", fake_build(calls))
    assert len(calls) == 1 and time.monotonic() - start < 30


def test_a_verified_plan_is_not_hashed_again_until_it_changes(tmp_path, monkeypatch):
    from beam_tensorrt import files

    monkeypatch.setenv("BEAM_TENSORRT_CACHE", str(tmp_path / "cache"))
    cache = EngineCache(local=tmp_path / "engines")
    plan = cache.get_or_build("k", fake_build([]))
    cache.get_or_build("k", fake_build([]))  # the first check of this version of the file hashes it
    hashed = []
    real = files.sha256_file
    monkeypatch.setattr(files, "sha256_file", lambda p: (hashed.append(p), real(p))[1])
    for _ in range(3):
        assert cache.get_or_build("k", fake_build([])) == plan
    assert hashed == []  # each worker process that starts would otherwise hash the whole plan
    plan.write_bytes(b"PLAM")  # same size, new content and modification time: checked again, rebuilt
    calls = []
    cache.get_or_build("k", fake_build(calls))
    assert hashed and len(calls) == 1 and plan.read_bytes() == b"PLAN"
