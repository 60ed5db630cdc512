#!/usr/bin/env bash
# Runs every benchmark and load harness of docs/PERFORMANCE.md in one go, at
# one commit, and keeps each one's output in a directory, so that the page's
# figures all come from one run on one machine state.
#
# Usage: benches/run-all.sh [--out DIR] [--only "echo http ..."] [--quick]
#
# Parts, in order (names for --only):
#   echo     benches/echo.sh: 1-worker echo, pinned, against the hand-written
#            epoll loop, tokio and Go (ANCHORS=DIR; skipped without)
#   http     benches/http.sh: examples/http.rs (2 workers, 2 pinned, 1) against
#            may_minihttp (MAY_HTTP) and tokio (benches/tokio-http), wrk -c100/-c1000,
#            plain and 16-deep pipelined
#   instr    benches/instr.sh when present: user-space instructions per echo
#            request; benches/instr_http.sh: per pipelined HTTP request,
#            gopark against may_minihttp (callgrind)
#   micro    cargo bench --bench core, chan_sync, net, stack; Go's twins of
#            the same shapes (benches/go/*.go; gobench from ANCHORS)
#   place    cargo bench --bench place and benches/go/place.go
#   cpu      cargo bench --bench cpu_echo (CPU-heavy echo, hog on one worker)
#            with benches/go/cpu_echo.go
#   skynet   benches/skynet.sh
#   chan     the 4/4 contended channel against benches/go/chan_mpmc.go, and the
#            contended Mutex against benches/go/mutex.go
#   liveness benches/stall.sh, cargo bench --bench coop,
#            benches/tokio-blocking/compare.sh
#   memory   RSS of 100,000 idle parked coroutines (tests/stack_scale.rs)
#
# --quick runs each part with fewer rounds (a smoke test of the script, not
# figures to publish). Nothing else should run on the machine meanwhile: the
# harnesses interleave the servers they compare, which evens out slow
# drifts, not a competing build. A full run takes about 30 minutes on
# 2 vCPUs. Go parts need `go` (apt-get install golang-go); each part that
# misses a tool or a comparison server says so and goes on.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
out=/tmp/gopark-perf-$commit only="" quick=0
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    -h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
want() { [ -z "$only" ] || [[ " $only " == *" $1 "* ]]; }
r() { if [ $quick = 1 ]; then echo "$1"; else echo "$2"; fi; }
have_go=0
command -v go >/dev/null && have_go=1
gobin=$out/go-bin
mkdir -p "$gobin"
gobuild() { # NAME SRC: builds a Go program once; prints its path or nothing
  [ $have_go = 1 ] || return 0
  if [ ! -x "$gobin/$1" ]; then
    (cd "$(dirname "$2")" && go build -o "$gobin/$1" "$(basename "$2")") >&2 || return 0
  fi
  echo "$gobin/$1"
}
section() {
  echo
  echo "=== $1 ($(date -u +%H:%M:%S), load average $(cut -d' ' -f1-3 /proc/loadavg))"
}
{
  echo "# gopark performance run: commit $commit, $(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -r)"
  echo "# $(rustc --version); $(go version 2>/dev/null || echo 'no go')"
} | tee "$out/summary.txt"

if want echo; then
  section echo | tee -a "$out/summary.txt"
  for i in $(seq "$(r 1 3)"); do
    benches/echo.sh --secs "$(r 2 6)" 2>&1
  done | tee "$out/echo.txt" | grep -E "^(gopark|epoll|tokio|go) " | tee -a "$out/summary.txt"
fi

if want http; then
  section http | tee -a "$out/summary.txt"
  benches/http.sh --rounds "$(r 1 5)" --secs "$(r 2 5)" --servers "gopark gopark-pin gopark-w1 may tokio" \
    2>&1 | tee "$out/http.txt" | sed -n '/^# medians/,$p' | tee -a "$out/summary.txt"
fi

if want instr; then
  section instr | tee -a "$out/summary.txt"
  if [ -x benches/instr.sh ]; then
    benches/instr.sh 2>&1 | tee "$out/instr.txt" | tail -30 >>"$out/summary.txt"
  fi
  benches/instr_http.sh 2>&1 | tee "$out/instr_http.txt" | grep "instructions per request" | tee -a "$out/summary.txt"
fi

if want micro; then
  section micro | tee -a "$out/summary.txt"
  secs=$(r 1 2)
  for b in core chan_sync net stack; do
    cargo bench -q --bench $b -- --warm-up-time 1 --measurement-time "$secs" 2>&1
  done | tee "$out/micro.txt" | grep -E "time:|^[a-z_0-9/]+$" | tee -a "$out/summary.txt"
  gb=""
  if [ -n "${ANCHORS:-}" ] && [ -d "${ANCHORS}/go/gobench" ]; then gb=$(gobuild gobench "$ANCHORS/go/gobench/main.go"); fi
  pp=$(gobuild tcp_pingpong benches/go/tcp_pingpong.go)
  for p in 1 2; do
    if [ -n "$gb" ]; then
      for m in "spawn 1000000" "pingpong 1000000" "yield 1000000" "sleep 100000" "idle 100000"; do
        GOMAXPROCS=$p "$gb" $m
      done
    fi
    [ -n "$pp" ] && echo "GOMAXPROCS=$p $(GOMAXPROCS=$p "$pp" -n "$(r 20000 100000)" -runs 5 | tail -1)"
  done 2>&1 | tee -a "$out/micro.txt" | tee -a "$out/summary.txt"
fi

if want place; then
  section place | tee -a "$out/summary.txt"
  pg=$(gobuild place benches/go/place.go)
  for i in $(seq "$(r 1 2)"); do
    cargo bench -q --bench place -- "$(r 5 21)" 2>&1 | grep "^place/"
    if [ -n "$pg" ]; then
      for p in 1 2; do echo "GOMAXPROCS=$p"; GOMAXPROCS=$p "$pg" -rounds "$(r 5 21)" | grep "^go/"; done
    fi
  done 2>&1 | tee "$out/place.txt" | tee -a "$out/summary.txt"
fi

if want cpu; then
  section cpu | tee -a "$out/summary.txt"
  ce=$(gobuild cpu_echo benches/go/cpu_echo.go)
  GO_CPU_ECHO=$ce cargo bench -q --bench cpu_echo -- "$(r 1 5)" "$(r 1 3)" 2>&1 |
    tee "$out/cpu_echo.txt" | grep -E "^(cpu_echo|hog)" | tee -a "$out/summary.txt"
fi

if want skynet; then
  section skynet | tee -a "$out/summary.txt"
  benches/skynet.sh --rounds "$(r 1 3)" --runs 3 2>&1 | tee "$out/skynet.txt" | tail -12 >>"$out/summary.txt"
fi

if want chan; then
  section chan | tee -a "$out/summary.txt"
  cm=$(gobuild chan_mpmc benches/go/chan_mpmc.go)
  for i in $(seq "$(r 1 5)"); do
    cargo bench -q --bench chan_sync -- buffered_chan --warm-up-time 1 --measurement-time 3 2>&1 | grep -E "time:|^[a-z_0-9/]+$"
    [ -n "$cm" ] && GOMAXPROCS=2 "$cm" -p 4 -cap 128 -n 2000000 -runs 5 | tail -1
  done 2>&1 | tee "$out/chan.txt" | tee -a "$out/summary.txt"
  mg=$(gobuild mutex benches/go/mutex.go)
  for i in $(seq "$(r 1 3)"); do
    cargo bench -q --bench chan_sync -- mutex_8 --warm-up-time 1 --measurement-time 2 2>&1 | grep -E "time:|^[a-z_0-9/]+$"
    [ -n "$mg" ] && GOMAXPROCS=2 "$mg" -runs 5 | tail -1
  done 2>&1 | tee "$out/mutex.txt" | tee -a "$out/summary.txt"
fi

if want liveness; then
  section liveness | tee -a "$out/summary.txt"
  benches/stall.sh --rounds "$(r 1 3)" 2>&1 | tee "$out/stall.txt" | tail -25 >>"$out/summary.txt"
  cargo bench -q --bench coop -- "$(r 2 9)" 2>&1 | tee "$out/coop.txt" | tail -6 >>"$out/summary.txt"
  benches/tokio-blocking/compare.sh "$(r 1 3)" 2>&1 | tee "$out/blocking.txt" | tail -8 >>"$out/summary.txt"
fi

if want memory; then
  section memory | tee -a "$out/summary.txt"
  GOPARK_IDLE_N=100000 cargo test -q --release --test stack_scale idle -- --ignored --nocapture 2>&1 |
    tee "$out/memory.txt" | grep -iE "rss|KiB|bytes" | tee -a "$out/summary.txt"
fi

echo
echo "outputs in $out (summary.txt has the lines the page quotes)"
