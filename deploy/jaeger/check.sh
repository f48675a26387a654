#!/usr/bin/env bash
# Builds Jaeger v2 from the Go module proxy (a few minutes on two cores the
# first time), starts it on loopback with in-memory storage, runs the
# main example (examples/multitenant) exporting to it over OTLP/HTTP, and reads each chain back
# through Jaeger's query API by its switchyard.correlation_id.
#
#   bash deploy/jaeger/check.sh            # from the repository's root
#   JAEGER_BIN=/path/to/jaeger bash deploy/jaeger/check.sh
#
# Needs Go, curl and python3. Ports: 4318 (OTLP/HTTP in), 16686 (query).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
work=$(mktemp -d)
trap 'kill "${jaeger_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

bin=${JAEGER_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/switchyard/jaeger}
if [ ! -x "$bin" ]; then
  echo "check: building Jaeger into $bin"
  mkdir -p "$work/build" "$(dirname "$bin")"
  (cd "$work/build" && go mod init jaegerbuild >/dev/null 2>&1 &&
    go get -tool github.com/jaegertracing/jaeger/cmd/jaeger@v1.75.0 &&
    go build -o "$bin" github.com/jaegertracing/jaeger/cmd/jaeger)
fi

"$bin" >"$work/jaeger.log" 2>&1 &
jaeger_pid=$!
for _ in $(seq 1 60); do
  curl -sf http://127.0.0.1:16686/api/services >/dev/null && break
  sleep 0.5
done

echo "check: running the main example against Jaeger"
go build -o "$work/multitenant" ./examples/multitenant
(cd "$work" && OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_SERVICE_NAME=switchyard-multitenant ./multitenant) | tee "$work/out.txt"

status=0
for cid in $(awk '/^chain /{print $2}' "$work/out.txt"); do
  tags=$(python3 -c 'import json,sys,urllib.parse; print(urllib.parse.quote(json.dumps({"switchyard.correlation_id": sys.argv[1]})))' "$cid")
  for _ in $(seq 1 20); do # Jaeger indexes what it received within a moment
    curl -sf "http://127.0.0.1:16686/api/traces?service=switchyard-multitenant&tags=$tags" >"$work/trace.json"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["data"]; sys.exit(0 if d and len(d[0]["spans"])>=4 else 1)' "$work/trace.json" && break
    sleep 0.5
  done
  echo "check: chain $cid as Jaeger returns it:"
  python3 - "$work/trace.json" <<'PY' || status=1
import json, sys
data = json.load(open(sys.argv[1]))["data"]
if len(data) != 1:
    sys.exit("  want one trace, got %d" % len(data))
t = data[0]
spans = {s["spanID"]: s for s in t["spans"]}
def parent(s):
    for r in s.get("references", []):
        if r["refType"] == "CHILD_OF":
            return r["spanID"]
def depth(s):
    p = parent(s)
    return 0 if p not in spans else 1 + depth(spans[p])
for s in sorted(t["spans"], key=lambda s: s["startTime"]):
    tags = {x["key"]: x["value"] for x in s["tags"]}
    kind = tags.get("span.kind", "")
    print("  %s%s [%s] %s" % ("  " * depth(s), s["operationName"], kind, tags.get("switchyard.stream", "")))
chain = [s for s in t["spans"] if s["operationName"] in ("append visits", "visits-by-ip process VisitBooked", "visit-notify process VisitLogged")]
if len(chain) < 4:
    sys.exit("  want append → visits-by-ip process → append → visit-notify process in trace %s" % t["traceID"])
print("  trace %s: %d spans" % (t["traceID"], len(t["spans"])))
PY
done
exit $status
