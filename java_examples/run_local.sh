#!/usr/bin/env bash
# Run the Java SentimentPipeline for real on this machine:
#   Java SDK -> PortableRunner -> a job server -> ClassifyText in the Python worker pool of a running
#   `beam-tensorrt serve`. The job server is Prism (Beam's Go runner, built once with Go), or the one
#   at JOB_ENDPOINT=HOST:PORT (e.g. `beam-tensorrt flink-job-server`); JAVA_PIPELINE_ARGS adds options.
# Usage: [JOB_ENDPOINT=HOST:PORT] java_examples/run_local.sh INPUT OUTPUT [ERRORS]
# Needs: JDK 17 + Maven, Go (without JOB_ENDPOINT), beam-tensorrt installed (make install). On a machine
# without Maven, JAVA_EXAMPLE_CLASSPATH names the compiled example and its jars (bench/stage_java.sh
# stages them, with a Java runtime) and `java` runs it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
input=$(realpath "$1"); output=$(realpath -m "$2"); errors=${3:+$(realpath -m "$3")}
bin=${BEAM_TENSORRT_BIN:-$root/.venv/bin}
if [ -x "$bin/beam-tensorrt" ]; then
  cli="$bin/beam-tensorrt"
elif command -v beam-tensorrt > /dev/null; then
  cli=$(command -v beam-tensorrt)
else
  echo "run_local.sh: no beam-tensorrt in $bin or on PATH: run make install, or set BEAM_TENSORRT_BIN=DIR" >&2
  exit 2
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
service_port=$(free_port)
log_dir=$(mktemp -d)
"$cli" serve --port "$service_port" > "$log_dir/serve.log" 2>&1 &
service_pid=$!
prism_pid=
trap 'kill $service_pid $prism_pid 2>/dev/null || true' EXIT
job_endpoint=${JOB_ENDPOINT:-}
if [ -z "$job_endpoint" ]; then
  prism_dir=${PRISM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/beam-tensorrt/prism-2.77.0}
  if [ ! -x "$prism_dir/prism" ]; then
    echo "building Prism (Beam 2.77 Go module) into $prism_dir ..." >&2
    GOBIN="$prism_dir" go install github.com/apache/beam/sdks/v2/go/cmd/prism@v2.77.0
  fi
  job_port=$(free_port)
  "$prism_dir/prism" --job_port "$job_port" --serve_http=false > "$log_dir/prism.log" 2>&1 &
  prism_pid=$!
  job_endpoint=127.0.0.1:$job_port
fi
for _ in $(seq 1 240); do
  grep -q "listening on" "$log_dir/serve.log" && break
  kill -0 "$service_pid" 2>/dev/null || break
  sleep 0.5
done
if ! grep -q "listening on" "$log_dir/serve.log"; then
  echo "run_local.sh: beam-tensorrt serve did not start ($cli):" >&2
  tail -20 "$log_dir/serve.log" >&2
  exit 1
fi
cd "$here"
start=$(date +%s)
# Maven 3.8 prints ANSI reset codes even in batch mode: strip them (and keep mvn's exit status).
# One build at a time in this folder (two runs at once would compile into the same target/).
# Beam Java zips the classpath's folders into Java's temporary folder: the caller's TMPDIR, not /tmp.
export MAVEN_OPTS="${MAVEN_OPTS:-} -Djava.io.tmpdir=${TMPDIR:-/tmp}"
pipeline_args="--input=$input --output=$output ${errors:+--errors=$errors} \
  --expansionService=127.0.0.1:$service_port --runner=PortableRunner --jobEndpoint=$job_endpoint \
  --inProcessJavaWorkers=true ${JAVA_PIPELINE_ARGS:-}"
if [ -n "${JAVA_EXAMPLE_CLASSPATH:-}" ]; then
  # shellcheck disable=SC2086  # the options are words, as exec.args splits them
  java "-Djava.io.tmpdir=${TMPDIR:-/tmp}" -cp "$JAVA_EXAMPLE_CLASSPATH" org.beamtensorrt.examples.SentimentPipeline \
    $pipeline_args >&2
else
  flock "$here/.build.lock" mvn -q -B -Dstyle.color=never compile exec:java -Dexec.args="$pipeline_args" 2>&1 \
    | sed -u $'s/\x1b\\[[0-9;]*m//g' >&2
fi
echo "Java pipeline finished in $(( $(date +%s) - start )) s (logs: $log_dir)" >&2
