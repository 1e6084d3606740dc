"""Our entry points' logging: Beam's known noise is dropped, everything else kept."""
import logging
import subprocess
import sys

from beam_tensorrt.logs import BEAM_NOISE, quiet_logging


def test_beams_known_noise_is_dropped_and_other_warnings_kept(caplog):
    quiet_logging()
    root = logging.getLogger()
    noise_filter = root.handlers[0].filters[-1]
    noisy = logging.LogRecord("apache_beam", logging.WARNING, __file__, 1, BEAM_NOISE[0] + " (details)", None, None)
    useful = logging.LogRecord("beam_tensorrt", logging.WARNING, __file__, 1, "the plan was rebuilt", None, None)
    assert not noise_filter.filter(noisy) and noise_filter.filter(useful)


def test_importing_beam_tensorrt_first_keeps_beams_import_noise_out_of_a_program():
    script = "import beam_tensorrt, logging\nimport apache_beam\nlogging.warning('kept: a warning of the program')\n"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr.strip() == "WARNING:root:kept: a warning of the program", proc.stderr
