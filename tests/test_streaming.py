"""The streaming jobs' latency options (beam_tensorrt.streaming, used by examples/kafka_classify.py and
bench.streaming_latency): added where the job's Beam options leave them out, never over what the
user passed (no Kafka or runner needed)."""
import importlib.util

from conftest import ROOT


def example():
    spec = importlib.util.spec_from_file_location("kafka_classify", ROOT / "examples" / "kafka_classify.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bundle_limits_are_added_unless_the_job_sets_them():
    from beam_tensorrt.streaming import with_latency_options

    assert example().with_latency_options is with_latency_options  # the example applies these
    assert with_latency_options(["--streaming"]) == [
        "--streaming", "--max_bundle_time_mills=100", "--max_bundle_size=100"]
    # The user's own value stands, the other default is still added.
    assert with_latency_options(["--max_bundle_size=1000", "--streaming"]) == [
        "--max_bundle_size=1000", "--streaming", "--max_bundle_time_mills=100"]
    assert with_latency_options(["--max_bundle_time_mills=1000", "--max_bundle_size=1000"]) == [
        "--max_bundle_time_mills=1000", "--max_bundle_size=1000"]
    # Beam's other spelling of a flag, its value as the next argument.
    assert with_latency_options(["--max_bundle_size", "5"]) == ["--max_bundle_size", "5", "--max_bundle_time_mills=100"]
