"""``beam-tensorrt yaml``: run a Beam YAML pipeline with Beam's own runner, without Beam's noise."""
from __future__ import annotations

import argparse


def add(sub) -> None:
    p = sub.add_parser("yaml", help="run a Beam YAML pipeline (Beam's runner, without Beam's noise)",
                       description="Run a Beam YAML pipeline with Beam's own YAML runner (apache_beam.yaml.main), "
                                   "logging only what matters. Other options go to Beam, e.g. "
                                   "--jinja_variables='{\"input\": \"in.txt\"}' or --runner=PrismRunner "
                                   "(default: FnApiRunner, local).")
    p.add_argument("pipeline", help="the pipeline's YAML file")
    p.add_argument("beam_options", nargs=argparse.REMAINDER, help="Beam pipeline options")
    p.set_defaults(func=run)


def run(args) -> int:
    import importlib
    import os

    # Before Beam's YAML imports RunInference, so that it comes without torch (see that module).
    importlib.import_module("beam_tensorrt.beam_inference")
    from apache_beam.yaml import main as yaml_main

    if not os.path.isfile(args.pipeline):
        raise FileNotFoundError(f"pipeline {args.pipeline!r}: no such file")

    beam_args = list(args.beam_options)
    if not any(a.startswith("--runner") for a in beam_args):
        beam_args.append("--runner=FnApiRunner")  # local; Beam's default would first download Prism
    from jinja2.exceptions import UndefinedError

    try:
        yaml_main.run(argv=[f"--yaml_pipeline_file={args.pipeline}", *beam_args])
    except UndefinedError as e:  # a {{ variable }} the command line did not give
        raise ValueError(f"{args.pipeline}: {e}; give it with --jinja_variables='{{\"NAME\": \"VALUE\"}}'") from e
    return 0
