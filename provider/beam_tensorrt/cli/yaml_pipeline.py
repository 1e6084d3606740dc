"""``beam-tensorrt yaml``: run a Beam YAML pipeline with Beam's own runner, without Beam's noise."""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import shutil
import time
from ..errors import UsageError
from . import pool_flags

log = logging.getLogger(__name__)

# What Beam YAML's ML transforms (MLTransform's embeddings) import when installed, guarded by Beam:
# torch and transformers through sentence-transformers, TensorFlow... seconds of start-up.
ML_TRANSFORM_IMPORTS = ("sentence_transformers", "tensorflow", "tensorflow_hub", "tensorflow_text",
                        "tensorflow_transform", "vertexai", "openai")

# The temporary folders of Beam's file sinks (fileio's WriteToFiles), named by a UUID.
TEMP_FOLDER = re.compile(r"^\.temp[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def add(sub) -> None:
    p = sub.add_parser("yaml", help="run a Beam YAML pipeline (Beam's runner, without Beam's noise)",
                       description="Run a Beam YAML pipeline with Beam's own YAML runner (apache_beam.yaml.main), "
                                   "logging only what matters. Other options go to Beam, e.g. "
                                   "--jinja_variables='{\"input\": \"in.txt\"}' or --runner=PrismRunner "
                                   "(default: FnApiRunner, local).")
    p.add_argument("--workers", default="auto", metavar="auto|N",
                   help="SDK worker processes of Beam's local runner, from a worker pool started for the run, "
                        "the model loaded in each ahead (default auto: as `classify` chooses, for a pipeline "
                        "with an in-process ClassifyText on a GPU backend; else Beam's one). Ignored when the "
                        "pipeline sets --runner, --direct_num_workers or --direct_running_mode")
    pool_flags.add_gpus(p)
    p.add_argument("pipeline", help="the pipeline's YAML file")
    p.add_argument("beam_options", nargs=argparse.REMAINDER, help="Beam pipeline options")
    p.set_defaults(func=run)


def run(args) -> int:
    # Before Beam's YAML imports RunInference, so that it comes without torch (see that module).
    importlib.import_module("beam_tensorrt.beam_inference")
    if not os.path.isfile(args.pipeline):
        raise FileNotFoundError(f"pipeline {args.pipeline!r}: no such file")
    gpus = pool_flags.gpus(args)
    _import_beam_yaml_ml(args.pipeline)
    from apache_beam.yaml import main as yaml_main

    beam_args = list(args.beam_options)
    if not any(a.startswith("--runner") for a in beam_args):
        beam_args.append("--runner=FnApiRunner")  # local; Beam's default would first download Prism
    beam_args += _run_inference_handler(args.pipeline, beam_args)
    from jinja2.exceptions import UndefinedError

    argv = [f"--yaml_pipeline_file={args.pipeline}", *beam_args]
    started = time.time()
    try:
        options, constructor, display_data = yaml_main.build_pipeline_components_from_argv(argv)
    except UndefinedError as e:  # a {{ variable }} the command line did not give
        raise UsageError(f"{args.pipeline}: {e}; give it with --jinja_variables='{{\"NAME\": \"VALUE\"}}'") from e
    try:
        _run(options, constructor, display_data, args.workers, gpus)
    finally:
        _remove_temporary_folders(display_data["yaml"], started)
    return 0


def _run(options, constructor, display_data: dict, workers: str, gpus: list[str]) -> None:
    """Build and run the pipeline on the runner its options name, Beam's local one with a worker
    pool where ``yaml_workers.choose`` says so."""
    import contextlib

    import apache_beam as beam
    import yaml

    from ..local_parallelism import chosen_by_the_launcher
    from ..worker_pool.local import pooled_local_runner
    from .yaml_workers import choose

    explicit = options.get_all_options(drop_default=True)
    local = choose(yaml.safe_load(display_data["yaml"]), explicit, workers, len(gpus))
    log.info("beam-tensorrt yaml: %s", local.reason)
    chosen_by_the_launcher()
    runner_cm = (pooled_local_runner(local.workers, preload=local.preload, gpus=gpus, warm_cuda=bool(gpus))
                 if local.workers > 1 else contextlib.nullcontext((None, [])))
    with runner_cm as (runner, _):
        if local.workers > 1:
            from apache_beam.options.pipeline_options import DirectOptions

            options.view_as(DirectOptions).direct_num_workers = local.workers
        with beam.Pipeline(runner=runner, options=options, display_data=display_data) as p:
            constructor(p)


def _run_inference_handler(pipeline: str, beam_args: list[str]) -> list[str]:
    """For a pipeline whose RunInference names ClassifyText's model handler: register it with Beam
    YAML, and the Beam option that turns RunInference on (unless given). The options to add."""
    from ..yaml.run_inference import HANDLER_TYPE, register

    with open(pipeline, encoding="utf-8") as f:
        if HANDLER_TYPE not in f.read():
            return []
    register()
    if any(a.startswith("--yaml_experimental_features") for a in beam_args):
        return []
    return ["--yaml_experimental_features=ML"]


def _import_beam_yaml_ml(pipeline: str) -> None:
    """Beam YAML's ML module imports every MLTransform embedding backend that is installed while
    Beam loads its providers (on a machine with torch: torch, transformers and
    sentence-transformers, ~5-15 s). A pipeline that does not use MLTransform gets it without them."""
    from ..imports import reported_missing

    with open(pipeline, encoding="utf-8") as f:
        if "MLTransform" in f.read():
            return
    with reported_missing(ML_TRANSFORM_IMPORTS, "this pipeline does not use MLTransform"):
        importlib.import_module("apache_beam.yaml.yaml_ml")


def _write_folders(pipeline_yaml: str) -> set[str]:
    """The local folders the pipeline's ``WriteTo...`` transforms write into."""
    import yaml

    try:
        spec = yaml.safe_load(pipeline_yaml)
    except Exception:  # the run itself reports a pipeline that does not parse
        return set()
    from .yaml_workers import spec_nodes

    folders: set[str] = set()
    for node in spec_nodes(spec):
        config = node.get("config")
        path = config.get("path") if isinstance(config, dict) else None
        if str(node.get("type", "")).startswith("WriteTo") and isinstance(path, str) and "://" not in path:
            folders.add(os.path.dirname(os.path.abspath(path)))
    return folders


def _remove_temporary_folders(pipeline_yaml: str, since: float) -> None:
    """Beam's file sinks leave their ``.temp<uuid>`` folders behind, after a run that succeeded too:
    remove those this run made beside its outputs."""
    for folder in _write_folders(pipeline_yaml):
        for name in os.listdir(folder) if os.path.isdir(folder) else ():
            path = os.path.join(folder, name)
            if TEMP_FOLDER.match(name) and os.path.isdir(path) and os.path.getmtime(path) >= since - 1:
                shutil.rmtree(path, ignore_errors=True)
