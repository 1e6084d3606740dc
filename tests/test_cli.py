"""The main job, as a newcomer runs it: `beam-tensorrt classify` over files, in a subprocess."""
import json
import subprocess
import sys

from conftest import EXAMPLES, ROOT

CLI = [sys.executable, "-m", "beam_tensorrt.cli"]


def run_cli(*args, timeout=300):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_classify_tsv_keeps_fields_and_labels_and_runs_quietly(tmp_path, reviews):
    out = tmp_path / "out.jsonl"
    proc = run_cli("classify", "--input", str(EXAMPLES / "reviews.tsv"), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    # A healthy run says one thing: the summary. No warnings, tracebacks or terminal codes.
    lines = [line for line in proc.stderr.splitlines() if "building the model" not in line
             and "built 'sentiment-minilm'" not in line]
    assert len(lines) == 1 and lines[0].startswith("beam-tensorrt: classified 20 rows -> "), proc.stderr
    assert "\x1b" not in proc.stderr and proc.stdout == ""
    rows = read_jsonl(out)
    assert len(rows) == len(reviews)
    assert {tuple(sorted(r)) for r in rows} == {("expected", "id", "label", "score", "text")}
    assert all(r["label"] == r["expected"] for r in rows)


def test_classify_jsonl_other_text_field_with_errors_file(tmp_path):
    src = tmp_path / "in.jsonl"
    lines = [json.dumps({"body": "Great food and lovely staff.", "k": 1}),
             json.dumps({"body": "Cold, bland and overpriced.", "k": 2}),
             json.dumps({"body": None, "k": 3}),
             "{not json",
             json.dumps({"k": 5})]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out, err = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    proc = run_cli("classify", "--input", str(src), "--output", str(out), "--text-field", "body", "--errors", str(err))
    assert proc.returncode == 0, proc.stderr
    good = sorted(read_jsonl(out), key=lambda r: r["k"])
    assert [(r["k"], r["label"]) for r in good] == [(1, "POSITIVE"), (2, "NEGATIVE")]
    errors = read_jsonl(err)
    assert len(good) + len(errors) == len(lines)  # nothing lost
    msgs = sorted(e["msg"] for e in errors)
    assert any("invalid JSON" in m for m in msgs)
    assert any("'body' is null" in m for m in msgs)
    assert any("'body' is missing" in m for m in msgs)


def test_classify_csv_and_txt(tmp_path):
    csv_in = tmp_path / "in.csv"
    csv_in.write_text('id,review\n1,"Simply wonderful, a joy."\n2,"Awful, boring, a waste of time."\n', encoding="utf-8")
    out = tmp_path / "csv.jsonl"
    proc = run_cli("classify", "--input", str(csv_in), "--output", str(out), "--text-field", "review")
    assert proc.returncode == 0, proc.stderr
    assert sorted((r["id"], r["label"]) for r in read_jsonl(out)) == [("1", "POSITIVE"), ("2", "NEGATIVE")]
    txt = tmp_path / "in.txt"
    txt.write_text("I love this!\nI hate this.\n", encoding="utf-8")
    proc = run_cli("classify", "--input", str(txt), "--output", str(tmp_path / "txt.jsonl"))
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["label"] for r in read_jsonl(tmp_path / "txt.jsonl")) == ["NEGATIVE", "POSITIVE"]


def test_classify_parquet_a_row_group_at_a_time_with_errors_file(tmp_path):
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp_path / "in.parquet"
    texts = ["Simply wonderful, a joy.", None, "Awful, boring, a waste of time.", " ", "Great food and lovely staff."]
    when = [datetime.datetime(2026, 11, 26, 8, i) for i in range(5)]
    pq.write_table(pa.table({"k": range(5), "review": texts, "at": when}), src, row_group_size=2)
    out, err = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    proc = run_cli("classify", "--input", str(src), "--output", str(out), "--text-field", "review", "--errors", str(err),
                   "--progress-every", "0.1")
    assert proc.returncode == 0, proc.stderr
    good = sorted(read_jsonl(out), key=lambda r: r["k"])
    assert [(r["k"], r["label"], r["at"]) for r in good] == [
        (0, "POSITIVE", "2026-11-26 08:00:00"), (2, "NEGATIVE", "2026-11-26 08:02:00"), (4, "POSITIVE", "2026-11-26 08:04:00")]
    errors = sorted(read_jsonl(err), key=lambda e: e["element"]["k"])
    assert [(e["row"], e["element"]["k"], e["msg"]) for e in errors] == [
        (2, 1, "field 'review' is null"),
        (4, 3, "field 'review' is only whitespace (set allow_empty_text to classify such texts)")]
    assert proc.stderr.strip().splitlines()[-1].startswith("beam-tensorrt: classified 3 rows -> ")
    assert " / 5 (" in proc.stderr  # the progress line's total, from Parquet's metadata


def one_line_error(proc) -> str:
    """A user's mistake: exit 2 and exactly one line on stderr."""
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("beam-tensorrt: error: "), proc.stderr
    return lines[0]


def test_every_mistake_is_one_line_naming_cause_and_fix(tmp_path):
    good, out = str(EXAMPLES / "reviews.tsv"), str(tmp_path / "o.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": 3}\n', encoding="utf-8")
    cases = {  # command -> what its one line must say
        ("classify", "--input", good, "--output", out, "--backend", "nope"): ["--backend", "invalid choice"],
            ("classify", "--input", good, "--output", out, "--max-seq-len", "4096"): ["--max-seq-len", "maximum 512"],
        ("classify", "--input", str(tmp_path / "x.xlsx"), "--output", out): ["unknown extension"],
        ("classify", "--input", str(tmp_path / "missing.tsv"), "--output", out): ["no such file"],
        ("classify", "--input", good, "--output", str(tmp_path / "x.xlsx")): ["the format follows the extension"],
        ("classify", "--input", good, "--output", out, "--text-field", "body"): ["'body' is not a column",
                                                                                "(columns: id, text, expected)",
                                                                                "--text-field"],
        ("classify", "--input", str(bad), "--output", out): ["field 'text' must be a string", "--errors FILE"],
        ("serve", "--environment", "external", "--port", "0"): ["--environment-config"],
        ("serve", "--port", "0", "--prestart", "2"): ["--prestart need --worker-processes"],
        ("serve", "--port", "0", "--worker-processes", "--environment", "external", "--environment-config",
         "127.0.0.1:50000"): ["--worker-processes is for the embedded pool", "beam-tensorrt worker-pool"],
        ("worker-pool", "--port", "0", "--prestart", "-1"): ["--prestart must be auto or 0 or more"],
        ("worker-pool", "--port", "0", "--gpus", "99"): ["--gpus: GPU 99 is not visible to this process"],
        ("serve", "--port", "0", "--gpus", "0"): ["--gpus need --worker-processes"],
        ("serve", "--port", "0", "--no-worker-processes", "--warm-cuda"): ["--warm-cuda need --worker-processes"],
        ("serve", "--port", "0", "--tls-cert", "cert.pem"): ["--tls-cert and --tls-key go together"],
        ("flink-cluster", "--taskmanagers", "0"): ["--taskmanagers and --slots take a whole number"],
        ("classify", "--input", good, "--output", out, "--gpus", "cuda:1"): ["--gpus: 'cuda:1' is not 'all'"],
        ("worker-pool", "--port", "0", "--preload", '{"backend": "nope"}'): ["field 'backend'"],
        ("yaml", str(ROOT / "yaml_pipelines" / "classify_texts.yaml")): ["'input' is undefined", "--jinja_variables"],
    }
    # All at once: each is a fresh interpreter importing Beam, the slow part.
    procs = {args: subprocess.Popen(CLI + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for args in cases}
    for args, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        line = one_line_error(subprocess.CompletedProcess(args, proc.returncode, stdout, stderr))
        assert all(needle in line for needle in cases[args]), (args, line)


def test_empty_text_is_rejected_unless_asked_for(tmp_path):
    src, out, err = tmp_path / "in.txt", tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    src.write_text("I loved it\n\n   \nI hated it\n", encoding="utf-8")
    proc = run_cli("classify", "--input", str(src), "--output", str(out), "--errors", str(err))
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["label"] for r in read_jsonl(out)) == ["NEGATIVE", "POSITIVE"]
    assert sorted(e["msg"].split(" (")[0] for e in read_jsonl(err)) == ["field 'text' is empty",
                                                                        "field 'text' is only whitespace"]
    proc = run_cli("classify", "--input", str(src), "--output", str(out), "--allow-empty-text")
    assert proc.returncode == 0 and len(read_jsonl(out)) == 4


def test_progress_lines_then_a_summary_when_not_a_terminal(tmp_path):
    src = tmp_path / "many.txt"
    src.write_text("".join(f"a fine film, number {i}\n" for i in range(800)), encoding="utf-8")
    proc = run_cli("classify", "--input", str(src), "--output", str(tmp_path / "o.jsonl"), "--progress-every", "0.2")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    progress = [line for line in lines if " / 800 (" in line]
    assert any("rows/s" in line for line in progress), proc.stderr
    assert all(("starting" in line) == line.startswith("beam-tensorrt: 0 / 800") for line in progress), proc.stderr
    assert lines[-1].startswith("beam-tensorrt: classified 800 rows -> ") and "rows/s" in lines[-1]


def test_path_mistakes_and_help_answer_before_beam_is_imported(tmp_path):
    """A wrong extension or a missing local input is reported at once (importing Beam takes seconds)."""
    script = (
        "import sys\n"
        "from beam_tensorrt.cli import main\n"
        f"assert main(['classify', '--input', {str(tmp_path / 'missing.tsv')!r}, '--output', 'o.jsonl']) == 2\n"
        "assert main(['classify', '--input', 'in.xlsx', '--output', 'o.jsonl']) == 2\n"
        "assert main(['classify', '--input', 'in.tsv', '--output', 'o.parquet']) == 2\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert 'apache_beam' not in sys.modules, 'Beam was imported'\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("beam-tensorrt: error: ") == 3, proc.stderr


def test_ctrl_c_and_sigterm_end_in_one_line_and_leave_nothing(tmp_path):
    import signal
    import time

    src = tmp_path / "in.txt"
    src.write_text("".join(f"a fine film, number {i}\n" for i in range(20000)), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    for sig, code, word in ((signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")):
        proc = subprocess.Popen(CLI + ["classify", "--input", str(src), "--output", str(out), "--batch-size", "500",
                                       "--progress-every", "0.2"], stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        assert proc.stderr is not None
        while time.monotonic() < deadline:  # stopped once it is classifying
            line = proc.stderr.readline()
            if " rows done" in line and not line.split("beam-tensorrt: ")[1].startswith("0 "):
                break
        proc.send_signal(sig)
        rest = proc.stderr.read()
        assert proc.wait(timeout=60) == code, rest
        lines = [line for line in rest.strip().splitlines() if " rows done" not in line]
        assert lines == [f"beam-tensorrt: {word}: nothing written to {out}; temporary files removed"], rest
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


def test_a_busy_port_is_one_line_naming_it(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for command in (["serve", "--port", port], ["worker-pool", "--port", port]):
            proc = run_cli(*command, timeout=120)
            line = one_line_error(proc)
            assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in line and "--port 0" in line


def test_version():
    from beam_tensorrt import __version__

    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"beam-tensorrt {__version__}"


def test_pool_flags_default_to_workers_started_ahead_with_cuda_on_a_gpu_host(monkeypatch):
    """`serve --worker-processes` and `worker-pool` with no other pool flag: on a GPU host workers started
    ahead, as many as the main job runs, CUDA made ahead; elsewhere none ahead. `serve` alone keeps
    thread workers."""
    from beam_tensorrt.cli import parser, pool_flags, serve

    made = []
    monkeypatch.setattr("beam_tensorrt.worker_pool.servicer.CheckedWorkerPoolServicer",
                        lambda **kwargs: made.append(kwargs) or kwargs)
    monkeypatch.setattr("beam_tensorrt.gpus.gpu_backend_host", lambda: False)
    assert serve._pool(parser().parse_args(["serve"])) is None
    assert serve._pool(parser().parse_args(["serve", "--worker-processes"]))["prestart"] == 0
    assert pool_flags.prestart(parser().parse_args(["worker-pool"]), 1) == 0
    assert pool_flags.warm_cuda(parser().parse_args(["worker-pool"])) is False

    monkeypatch.setattr("beam_tensorrt.gpus.gpu_backend_host", lambda: True)
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    monkeypatch.setattr("beam_tensorrt.backends.resolve_auto", lambda: "tensorrt")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert serve._pool(parser().parse_args(["serve"])) is None
    pool = serve._pool(parser().parse_args(["serve", "--worker-processes"]))
    assert pool == {"use_process": True, "prestart": 8, "warm_cuda": True, "preload": "", "gpus": ["0"]}
    told = serve._pool(parser().parse_args(["serve", "--worker-processes", "--prestart", "2", "--no-warm-cuda"]))
    assert told["prestart"] == 2 and told["warm_cuda"] is False
    assert pool_flags.prestart(parser().parse_args(["worker-pool"]), 1) == 8


def test_a_config_mistake_in_a_yaml_pipeline_is_one_line_saying_where(tmp_path):
    """Beam YAML wraps ClassifyText's ConfigError in its own error, which names the step's line: one
    line, exit 2, both there (a bug elsewhere keeps its traceback)."""
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("""pipeline:
  type: chain
  transforms:
    - type: Create
      config: {elements: [{text: fine}]}
    - type: ClassifyText
      config: {max_seq_len: 4096}
providers:
  - type: python
    config: {}
    transforms: {ClassifyText: beam_tensorrt.ClassifyText}
""")
    line = one_line_error(run_cli("yaml", str(pipeline)))
    assert "max_seq_len" in line and "above the maximum 512" in line and "line 6" in line, line
