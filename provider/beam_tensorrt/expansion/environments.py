"""The environment the service attaches to what it expands: who runs ClassifyText's Python."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional
from ..errors import UsageError

if TYPE_CHECKING:  # Beam is imported when options are made: the CLI's help and checks stay fast
    from apache_beam.options.pipeline_options import PipelineOptions

ENVIRONMENTS = {
    "worker-pool": "(default) a Python worker pool served by this process on the same port; the runner asks it "
                   "for SDK workers. For local runs: FnApiRunner, Prism, a local Flink.",
    "embedded": "run in the client's own Python process (needs beam-tensorrt installed there).",
    "external": "a worker pool elsewhere (`beam-tensorrt worker-pool` beside the runner's workers): "
                "--environment-config HOST:PORT.",
    "process": "--environment-config '{\"command\": \"/path/to/boot\"}' on each runner worker.",
    "docker": "--environment-config IMAGE: an SDK container with beam-tensorrt (see docker/).",
}
# What each kind needs in --environment-config.
CONFIG_NEEDED = {"external": "a worker pool address HOST:PORT", "process": "a JSON command", "docker": "an image"}
# Client pipeline options that describe the client's own environment. Beam's servicer lays the
# client's options over the service's; these must not leak into what the service expands (a LOOPBACK
# client would otherwise make every expansion fail).
CLIENT_ENVIRONMENT_OPTIONS = ("environment_type", "environment_config", "environment_options", "sdk_location",
                              "default_sdk_harness_log_level")


def describe() -> str:
    return "\n".join(f"  {name:<12} {text}" for name, text in ENVIRONMENTS.items())


def environment_options(kind: str, config: Optional[str], own_address: str) -> PipelineOptions:
    """Pipeline options whose environment the service attaches to expanded transforms."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.portability import common_urns, python_urns

    flags = ["--experiments=beam_fn_api", "--sdk_location=container"]
    if kind == "worker-pool":
        flags += [f"--environment_type={common_urns.environments.EXTERNAL.urn}", f"--environment_config={own_address}"]
    elif kind == "embedded":
        flags += [f"--environment_type={python_urns.EMBEDDED_PYTHON}"]
    elif kind in CONFIG_NEEDED:
        if not config:
            raise UsageError(f"--environment {kind} needs --environment-config ({CONFIG_NEEDED[kind]})")
        flags += [f"--environment_type={kind.upper()}", f"--environment_config={config}"]
    else:
        raise UsageError(f"unknown environment {kind!r}; choose one of {', '.join(ENVIRONMENTS)}")
    return PipelineOptions(flags)
