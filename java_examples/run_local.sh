#!/usr/bin/env bash
# Run the Java SentimentPipeline for real on this machine:
#   Java SDK -> PortableRunner -> Prism job server (Beam's Go runner) -> ClassifyText in the
#   Python worker pool of a running `beam-tensorrt serve`.
# Usage: java_examples/run_local.sh INPUT OUTPUT [ERRORS]
# Needs: JDK 17 + Maven, Go (builds Prism once), beam-tensorrt installed (make install).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
input=$(realpath "$1"); output=$(realpath -m "$2"); errors=${3:+$(realpath -m "$3")}
bin=${BEAM_TENSORRT_BIN:-$root/.venv/bin}
prism_dir=${PRISM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/beam-tensorrt/prism-2.77.0}
if [ ! -x "$prism_dir/prism" ]; then
  echo "building Prism (Beam 2.77 Go module) into $prism_dir ..." >&2
  GOBIN="$prism_dir" go install github.com/apache/beam/sdks/v2/go/cmd/prism@v2.77.0
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
service_port=$(free_port); job_port=$(free_port)
log_dir=$(mktemp -d)
"$bin/beam-tensorrt" serve --port "$service_port" > "$log_dir/serve.log" 2>&1 &
service_pid=$!
"$prism_dir/prism" --job_port "$job_port" --serve_http=false > "$log_dir/prism.log" 2>&1 &
prism_pid=$!
trap 'kill $service_pid $prism_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do grep -q "listening on" "$log_dir/serve.log" && break; sleep 0.5; done
cd "$here"
start=$(date +%s)
# Maven 3.8 prints ANSI reset codes even in batch mode: strip them (and keep mvn's exit status).
mvn -q -B -Dstyle.color=never compile exec:java -Dexec.args="--input=$input --output=$output ${errors:+--errors=$errors} \
  --expansionService=127.0.0.1:$service_port --runner=PortableRunner --jobEndpoint=127.0.0.1:$job_port \
  --inProcessJavaWorkers=true" 2>&1 | sed -u $'s/\x1b\\[[0-9;]*m//g' >&2
echo "Java pipeline finished in $(( $(date +%s) - start )) s (logs: $log_dir)" >&2
