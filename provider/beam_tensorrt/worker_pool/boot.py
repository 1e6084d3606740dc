"""What a pool worker process runs: boot ahead of a job (imports, CUDA context, a preloaded model),
then serve the job's control endpoint. Imported inside the worker by ``servicer``'s boot program."""
from __future__ import annotations

import json
import logging
from ..errors import UsageError

log = logging.getLogger("beam_tensorrt.worker_pool")


def preload_handler(preload: str):
    """The model handler of ``preload``, a ClassifyText config as JSON; ValueError naming what is wrong."""
    from ..config import ClassifyTextConfig
    from ..handler import TextClassificationModelHandler

    try:
        config = json.loads(preload)
    except ValueError as e:
        raise UsageError(f"--preload must be ClassifyText's config as a JSON object: {e}") from None
    if not isinstance(config, dict):
        raise UsageError(f"--preload must be ClassifyText's config as a JSON object, not {preload!r}")
    return TextClassificationModelHandler.from_config(ClassifyTextConfig.from_kwargs(config))


def prepare_worker(cuda: bool = False, preload: str = "") -> None:
    """What a pool worker does before it is handed a job: Beam's RunInference without its torch
    import (``beam_inference``), the classifier's modules; with ``cuda``, the CUDA context (0.3 s
    alone, about 1 s each when eight processes make theirs at once on one H100); with ``preload``
    (a ClassifyText config as JSON), that model, for a job that asks for the same."""
    from ..logs import drop_beam_noise_on_the_root_logger

    drop_beam_noise_on_the_root_logger()  # before Beam's import below logs its own
    import beam_tensorrt.beam_inference  # noqa: F401
    import beam_tensorrt.classifier  # noqa: F401

    if cuda:
        try:
            from cuda.bindings import runtime as cudart  # type: ignore[import-not-found]

            err, *_ = cudart.cudaFree(0)
            if int(err) != 0:
                log.warning("worker could not make a CUDA context ahead of its job: CUDA error %d", int(err))
        except ImportError as e:
            log.warning("worker cannot make a CUDA context ahead of its job (%s); it will when a model loads", e)
    if preload:
        from ..handler import preload as preload_model

        preload_model(preload_handler(preload))


def serve_job(request: dict) -> None:
    """Serve one job's control endpoint, this worker's log records going to the runner's logging
    service (as Beam's own ``sdk_worker_main`` does), where the job's owner sees them."""
    from apache_beam.portability.api import endpoints_pb2
    from apache_beam.runners.worker.log_handler import FnApiLogRecordHandler
    from apache_beam.runners.worker.sdk_worker import SdkHarness

    handler = None
    if request.get("logging"):
        handler = FnApiLogRecordHandler(endpoints_pb2.ApiServiceDescriptor(url=request["logging"]))
        logging.getLogger().setLevel(logging.INFO)
        logging.getLogger().addHandler(handler)
    try:
        SdkHarness(request["control"], worker_id=request["worker_id"]).run()
    finally:
        if handler is not None:
            handler.close()
