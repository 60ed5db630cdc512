#!/usr/bin/env bash
# User-space instructions per HTTP request under callgrind: examples/http.rs
# (and, when MAY_HTTP names its binary, may_minihttp's hello-world, which
# listens on 127.0.0.1:8080 whatever it is told; and the same handler on
# tokio, benches/tokio-http, built on first use, or the binary TOKIO_HTTP
# names, with TOKIO_WORKER_THREADS=2) driven by wrk, 16-deep
# pipelined, 50 connections. The server runs under valgrind; after a 3 s
# warm-up load the counters are dumped (callgrind_control -d), a 10 s load
# follows and is dumped again, and the second dump's total is divided by
# the requests wrk completed in it. Instruction counts do not depend on the
# machine's load, so this compares the servers' own work per request
# (parsing, encoding, the runtime); the kernel's share of the CPU is not in
# it.
#
# Usage: benches/instr_http.sh [--servers "may tokio gopark"] [--workers 2]
#                              [--depth 16]
# --depth 1 sends plain requests (one at a time per connection), so the
# figure includes a park and a wake-up per request.
#
# may goes first: its listener does not set SO_REUSEADDR, so it cannot bind
# the port while the connections of a run just before it are in TIME_WAIT
# (gopark's listener, std's, can).
# Needs: valgrind, wrk.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
servers="may tokio gopark" workers=2 depth=16
while [ $# -gt 0 ]; do
  case $1 in
    --servers) servers=$2 ;; --workers) workers=$2 ;; --depth) depth=$2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
for t in valgrind wrk callgrind_control; do
  command -v $t >/dev/null || { echo "$t not found" >&2; exit 1; }
done
cd "$root"
script=(-s benches/pipeline.lua)
if [ "$depth" = 1 ]; then script=(); fi
cargo build --release -q --example http
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
port=8080
if ss -ltn 2>/dev/null | grep -q "127.0.0.1:$port "; then
  echo "something already listens on 127.0.0.1:$port" >&2
  exit 1
fi

measure() { # NAME CMD...
  local name=$1
  shift
  valgrind --tool=callgrind --callgrind-out-file="$tmp/$name" "$@" >/dev/null 2>&1 &
  local vp=$!
  sleep 4
  wrk -t1 -c50 -d3s "${script[@]}" "http://127.0.0.1:$port/" -- "$depth" >/dev/null || true
  callgrind_control -d $vp >/dev/null 2>&1
  sleep 1
  local n
  n=$(wrk -t1 -c50 -d10s "${script[@]}" "http://127.0.0.1:$port/" -- "$depth" |
    awk '/requests in/{print $1}' || true)
  callgrind_control -d $vp >/dev/null 2>&1
  sleep 1
  kill $vp
  wait $vp 2>/dev/null || true
  if [ -z "$n" ] || [ ! -s "$tmp/$name.2" ]; then
    echo "note: $name: no measurement (did the server start and listen on 127.0.0.1:$port?)" >&2
    return 0
  fi
  local f=$tmp/$name.2
  local total
  total=$(awk '/^(summary|totals):/{print $2; exit}' "$f")
  printf '%-8s %9s requests  %7.0f instructions per request\n' "$name" "$n" "$(echo "$total / $n" | bc -l)"
  callgrind_annotate "$f" 2>/dev/null | sed -n '/file:function/,$p' | sed 's/,//g' |
    awk -v n="$n" 'NR>2 && NF>1 && $1+0>0 {printf "    %7.1f  %s\n", $1/n, $NF}' | head -12
}

for s in $servers; do
  case $s in
    gopark) measure gopark "$target/release/examples/http" --addr "127.0.0.1:$port" --workers "$workers" ;;
    may)
      if [ -n "${MAY_HTTP:-}" ] && [ -x "${MAY_HTTP}" ]; then
        measure may "$MAY_HTTP"
      else
        echo "note: skipping may: MAY_HTTP does not name the hello-world binary" >&2
      fi ;;
    tokio)
      tokio_bin=${TOKIO_HTTP:-}
      if [ -z "$tokio_bin" ]; then
        (cd benches/tokio-http && CARGO_TARGET_DIR=$target/tokio-http cargo build --release -q) &&
          tokio_bin=$target/tokio-http/release/tokio-http
      fi
      if [ -n "$tokio_bin" ] && [ -x "$tokio_bin" ]; then
        TOKIO_WORKER_THREADS=2 measure tokio "$tokio_bin" "127.0.0.1:$port"
      else
        echo "note: skipping tokio: no tokio-http binary (TOKIO_HTTP, or benches/tokio-http did not build)" >&2
      fi ;;
    *) echo "unknown server $s" >&2 ;;
  esac
done
