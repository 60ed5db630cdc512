#!/usr/bin/env bash
# Echo load harness: runs each echo server pinned to one CPU, drives it from
# another CPU with examples/echo_client.rs, and reports per server:
# requests/s, latency p50/p99, server CPU time per request (from
# /proc/PID/stat) and syscalls per request (perf's syscall tracepoints).
#
# Usage: benches/echo.sh [--conns 50] [--size 512] [--secs 10]
#                        [--servers "gopark epoll tokio go"] [--server-cpu 0] [--client-cpu 1]
#                        [--workers 1]
# The comparison servers (hand-written epoll, tokio, Go) are not part of this
# repository: ANCHORS=DIR names a directory holding epoll-echo/, tokio-echo/
# and go/echo-server/; without it, or for any that is missing, they are
# skipped with a note.
# Needs: taskset (util-linux); perf (Debian's linux-perf) for syscall counts.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
anchors=${ANCHORS:-}
conns=50 size=512 secs=10 scpu=0 ccpu=1 workers=1
servers="gopark epoll tokio go"
while [ $# -gt 0 ]; do
  case $1 in
    --conns) conns=$2 ;; --size) size=$2 ;; --secs) secs=$2 ;;
    --servers) servers=$2 ;; --server-cpu) scpu=$2 ;; --client-cpu) ccpu=$2 ;;
    --workers) workers=$2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done

cd "$root"
cargo build --release -q --example echo --example echo_client
# Where cargo put the binaries (CARGO_TARGET_DIR, as cargo itself reads it).
target=${CARGO_TARGET_DIR:-$root/target}
client=$target/release/examples/echo_client
atarget=$target/anchors
if [ -z "$anchors" ] || [ ! -d "$anchors" ]; then
  echo "note: ANCHORS not set (or not a directory): only gopark runs; the comparison servers are skipped" >&2
else
  for a in epoll-echo tokio-echo; do
    (cd "$anchors/$a" && CARGO_TARGET_DIR=$atarget cargo build --release -q) || echo "note: could not build $a" >&2
  done
  if command -v go >/dev/null; then
    (cd "$anchors/go/echo-server" && GOFLAGS=-mod=mod go build -o "$atarget/go-echo-server" .) \
      || echo "note: could not build the Go echo server" >&2
  fi
fi

server_cmd() { # name port
  case $1 in
    gopark) echo "$target/release/examples/echo --addr 127.0.0.1:$2 --workers $workers" ;;
    epoll) echo "$atarget/release/epoll-echo 127.0.0.1:$2" ;;
    tokio) echo "env TOKIO_WORKER_THREADS=$workers $atarget/release/tokio-echo 127.0.0.1:$2" ;;
    go) echo "env GOMAXPROCS=$workers $atarget/go-echo-server -addr 127.0.0.1:$2" ;;
  esac
}

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
tmp=$(mktemp -d)
if [ -n "${ECHO_KEEP:-}" ]; then echo "# raw outputs kept in $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi
have_perf=0
perf stat -e 'raw_syscalls:sys_enter' -- true >/dev/null 2>&1 && have_perf=1

printf "# echo: %s conns x %s B, %s s, server on CPU %s (%s worker), client on CPU %s\n" \
  "$conns" "$size" "$secs" "$scpu" "$workers" "$ccpu"
printf "%-8s %10s %10s %10s %12s %12s %10s\n" server "req/s" p50 p99 "CPU us/req" "syscalls/req" "CPU vs epoll"
port=7100
declare -A cpureq
rows=()
for s in $servers; do
  port=$((port + 1))
  cmd=$(server_cmd "$s" "$port")
  bin=$(echo "$cmd" | awk '{for(i=1;i<=NF;i++) if ($i ~ /^\//) {print $i; exit}}')
  if [ ! -x "$bin" ]; then echo "skip $s: $bin not built" >&2; continue; fi
  # shellcheck disable=SC2086
  taskset -c "$scpu" $cmd >"$tmp/$s.server" 2>&1 &
  pid=$!
  # `env` execs the server, so $pid is the server itself.
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  t0=$(ticks "$pid")
  if [ $have_perf = 1 ]; then
    # One tracepoint for every syscall: attaching the ~350 per-syscall ones
    # costs so much at each context switch that a server with two threads
    # on one CPU dropped from ~185k to ~24k req/s while counted.
    perf stat -x, -e 'raw_syscalls:sys_enter' -p "$pid" -o "$tmp/$s.perf" &
    perfpid=$!
    sleep 1 # let perf attach before the client starts
  fi
  taskset -c "$ccpu" "$client" --addr "127.0.0.1:$port" --conns "$conns" --size "$size" --secs "$secs" >"$tmp/$s.client" 2>&1 || true
  t1=$(ticks "$pid")
  if [ $have_perf = 1 ]; then kill -INT "$perfpid" 2>/dev/null || true; wait "$perfpid" 2>/dev/null || true; fi
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  reqs=$(grep -oE '[0-9]+ requests' "$tmp/$s.client" | awk '{print $1}' | head -1)
  rps=$(grep -oE '[0-9.]+ req/s' "$tmp/$s.client" | awk '{print $1}' | head -1)
  p50=$(grep -oE 'p50 [^ ]+' "$tmp/$s.client" | awk '{print $2}' | head -1)
  p99=$(grep -oE 'p99 [^ ]+' "$tmp/$s.client" | awk '{print $2}' | head -1)
  if [ -z "${reqs:-}" ] || [ "$reqs" = 0 ]; then
    echo "$s: no requests completed; client said:" >&2; cat "$tmp/$s.client" >&2; continue
  fi
  cpu_us=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v n="$reqs" 'BEGIN{printf "%.3f", (b-a)/hz*1e6/n}')
  sys="n/a"
  if [ $have_perf = 1 ] && [ -f "$tmp/$s.perf" ]; then
    sys=$(awk -F, -v n="$reqs" '$3 ~ /syscalls:sys_enter/ && $1 ~ /^[0-9]+$/ {t+=$1} END{printf "%.2f", t/n}' "$tmp/$s.perf")
  fi
  cpureq[$s]=$cpu_us
  rows+=("$s|$rps|$p50|$p99|$cpu_us|$sys")
done
for r in "${rows[@]}"; do
  IFS='|' read -r s rps p50 p99 cpu_us sys <<<"$r"
  ratio="-"
  if [ -n "${cpureq[epoll]:-}" ]; then
    ratio=$(awk -v a="$cpu_us" -v b="${cpureq[epoll]}" 'BEGIN{printf "%.2fx", a/b}')
  fi
  printf "%-8s %10s %10s %10s %12s %12s %10s\n" "$s" "$rps" "$p50" "$p99" "$cpu_us" "$sys" "$ratio"
done
