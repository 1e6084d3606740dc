"""The main job's progress line: the rate and the time left count from the first rows done."""
import io

from beam_tensorrt.cli.progress import ProgressReporter


def test_the_rate_counts_from_the_first_rows_done_not_from_the_start():
    reporter = ProgressReporter(10_000, stream=io.StringIO())
    start = reporter.start
    assert reporter.line(0, 0, now=start + 100) == "0 / 10,000 (0%) rows done, starting (2 min)"
    assert reporter.line(1_000, 0, now=start + 120) == "1,000 / 10,000 (10%) rows done, measuring the rate"
    # 1,000 more rows in 10 s: 100 rows/s and 80 s left (counted from the start: 18 rows/s, 7 min left)
    assert reporter.line(1_900, 100, now=start + 130) == (
        "2,000 / 10,000 (20%) rows done, 100 rows rejected, 100 rows/s, ~80 s left")
