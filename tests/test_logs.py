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


def test_importing_beam_tensorrt_leaves_the_programs_loggers_alone():
    # (Beam's import logs through the root logger, which gives it a handler: Python's doing, not ours.)
    script = ("import logging\nroot = logging.getLogger()\nlevel = root.level\n"
              "import beam_tensorrt\nfrom beam_tensorrt import ClassifyText, TextClassificationModelHandler\n"
              "print(root.level == level and not root.filters and not any(h.filters for h in root.handlers))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stdout + proc.stderr
