"""Our entry points' logging: Beam's known noise is dropped, everything else kept."""
import logging

from beam_tensorrt.logs import BEAM_NOISE, quiet_logging


def test_beams_known_noise_is_dropped_and_other_warnings_kept(caplog):
    quiet_logging()
    root = logging.getLogger()
    noise_filter = root.handlers[0].filters[-1]
    noisy = logging.LogRecord("apache_beam", logging.WARNING, __file__, 1, BEAM_NOISE[0] + " (details)", None, None)
    useful = logging.LogRecord("beam_tensorrt", logging.WARNING, __file__, 1, "the plan was rebuilt", None, None)
    assert not noise_filter.filter(noisy) and noise_filter.filter(useful)
