#!/bin/sh
# Runs every kith-loadgen scenario against one server and keeps the JSON reports.
#
# Usage: bench/run-all.sh LABEL SERVER_PID [extra kith-loadgen target options...]
#   e.g. bench/run-all.sh postfix+dovecot "$(cat /run/dovecot-kith/master.pid)" \
#          --smtp 127.0.0.1:11465 --imap 127.0.0.1:11993 --domain bench.test \
#          --accounts /etc/kith-bench/accounts.txt
#        bench/run-all.sh kith-relay "$RELAY_PID" --smtp 127.0.0.1:4650 --imap 127.0.0.1:9930 \
#          --domain relay.test
# Environment: LOADGEN (target/release/kith-loadgen), OUT (bench/results),
#   SCENARIOS (all: "latency-light latency-1000 throughput fanout idle"),
#   IDLE_CONNECTIONS (10000).
set -eu
LABEL=$1
PID=$2
shift 2
LOADGEN=${LOADGEN:-${CARGO_TARGET_DIR:-target}/release/kith-loadgen}
OUT=${OUT:-$(dirname "$0")/results}
SCENARIOS=${SCENARIOS:-latency-light latency-1000 throughput fanout idle}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}
mkdir -p "$OUT"
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

for s in $SCENARIOS; do
    case $s in
        latency-light) args="latency --rate 20 --duration 30 --senders 4 --receivers 4" ;;
        latency-1000) args="latency --rate 1000 --duration 10 --senders 50 --receivers 10 --drain 300" ;;
        throughput) args="throughput --senders 100 --size 4096 --messages 10000 --receivers 10 --drain 300" ;;
        fanout) args="fanout --recipients 1000 --rounds 3" ;;
        idle) args="idle --connections $IDLE_CONNECTIONS --server-pid $PID" ;;
        *) echo "unknown scenario $s" >&2; exit 1 ;;
    esac
    file="$OUT/$LABEL-$s.json"
    # A backlog from the previous scenario would be delivered during this one.
    if command -v postqueue >/dev/null 2>&1; then
        while ! postqueue -p 2>/dev/null | grep -q "Mail queue is empty"; do sleep 2; done
    fi
    echo "== $LABEL $s (load average: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    # shellcheck disable=SC2086
    "$LOADGEN" --insecure --label "$LABEL" "$@" $args --json >"$file.tmp" && mv "$file.tmp" "$file"
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(json.dumps({"figures":{f["name"]:round(f["value"],2) for f in r["figures"]},"latencies":{l["name"]:l["summary"] and {k:round(v,2) for k,v in l["summary"].items()} for l in r["latencies"]},"notes":r["notes"]}, indent=1))' "$file" >&2
done
