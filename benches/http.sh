#!/usr/bin/env bash
# HTTP load harness: drives examples/http.rs (and, when given, a tokio and a
# may_minihttp comparison server) with wrk, non-pipelined and pipelined, at several
# connection counts, interleaving the servers (A B C A B C ...) for N rounds.
# Each run starts a fresh server process and reports: requests/s (wrk), server
# CPU time per request (utime+stime from /proc/PID/stat, before/after), the
# per-thread CPU split (/proc/PID/task/*/stat, % of one CPU over the run),
# voluntary and involuntary context switches (summed over
# /proc/PID/task/*/status), the machine's idle time over the run (% of all
# CPUs, /proc/stat), and wrk's socket errors and non-2xx responses. Before
# each server's first run it prints the size of its answer to one `GET /`:
# wrk parses every response, so the servers compared must answer with about
# the same bytes (a stale build of the tokio server shows there).
# At the end: per configuration, the median of each figure and its spread;
# then each server against the first one listed, as per-round ratios
# (median, min..max).
#
# Usage: benches/http.sh [--rounds 5] [--secs 5] [--conns "100 1000"]
#                        [--modes "plain pipeline"] [--depth 16] [--threads 2]
#                        [--servers "gopark gopark-w1 gopark-pin tokio may may-unpinned"]
#                        [--server-cpus LIST --client-cpus LIST]
#                        [--tokio-http DIR|BINARY] [--may-http DIR|BINARY]
#
# Servers:
#   gopark     examples/http.rs with the runtime's default workers
#              (GOPARK_WORKERS or the available parallelism)
#   gopark-w1  examples/http.rs --workers 1
#   gopark-pin examples/http.rs --pin: default workers, each pinned to its
#              own CPU (`RuntimeBuilder::pin_workers`), as may pins its
#              workers by default
#   tokio      the same handler on tokio, for comparison: benches/tokio-http
#              (a cargo project of its own, built here in release on first
#              use; it includes examples/http.rs and answers with the same
#              bytes). --tokio-http (or TOKIO_HTTP) names another binary or
#              cargo project with a `tokio-http` binary instead; it must take
#              the listen address as its only argument. Its threads are
#              TOKIO_WORKER_THREADS=${TOKIO_THREADS:-2}.
#   may        may_minihttp's `hello-world` example (a "Hello, world!" server
#              on the may coroutine library), for comparison; not part of this
#              repository either. Give --may-http (or MAY_HTTP) the example's
#              binary or a checkout of may_minihttp (its `hello-world` example
#              is built here in release). That example listens on
#              127.0.0.1:8080 whatever its arguments (it is still given the
#              address); MAY_PORT changes the port the harness uses. may runs
#              one worker thread per CPU. Without it, skipped with a note.
#   may-unpinned  the same example with may's worker pinning off (may pins
#              by default, gopark does not): built from a patched copy of
#              the checkout that --may-http names (or that holds the binary
#              it names, under target/release/examples); MAY_WORKERS sets
#              its worker count.
#
# HTTP_BINS="name=PATH ..." adds other builds of examples/http.rs (default
# workers) as servers of those names, to be listed in --servers: e.g. the
# build before a change, in the same rotation.
#
# Pinning (off by default): --server-cpus 0 --client-cpus 1 runs the server
# and wrk under `taskset -c` on those CPU lists.
#
# Needs: wrk (Debian/Ubuntu: `apt-get install -y wrk`), taskset (util-linux)
# only when pinning. HTTP_KEEP=1 keeps the raw wrk output.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=5 secs=5 conns="100 1000" modes="plain pipeline" depth=16 threads=2
servers="gopark gopark-w1 tokio may" scpus="" ccpus=""
tokio_src=${TOKIO_HTTP:-$root/benches/tokio-http} may_src=${MAY_HTTP:-}
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2 ;; --secs) secs=$2 ;; --conns) conns=$2 ;;
    --modes) modes=$2 ;; --depth) depth=$2 ;; --threads) threads=$2 ;;
    --servers) servers=$2 ;; --server-cpus) scpus=$2 ;; --client-cpus) ccpus=$2 ;;
    --tokio-http) tokio_src=$2 ;; --may-http) may_src=$2 ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift 2
done
if ! command -v wrk >/dev/null; then
  echo "wrk not found: install it (Debian/Ubuntu: apt-get install -y wrk)" >&2
  exit 1
fi
if { [ -n "$scpus" ] && [ -z "$ccpus" ]; } || { [ -z "$scpus" ] && [ -n "$ccpus" ]; }; then
  echo "--server-cpus and --client-cpus go together" >&2
  exit 2
fi

cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
cargo build --release -q --example http
gopark_bin=$target/release/examples/http

# Builds the `hello-world` example of the may_minihttp checkout $1 into the
# target directory $2; prints the binary's path, or a note naming server $3
# on stderr (and nothing on stdout) when the build fails.
build_hello() {
  (cd "$1" && CARGO_TARGET_DIR=$2 cargo build --release -q --example hello-world) \
    && echo "$2/release/examples/hello-world" \
    || echo "note: skipping $3: could not build the hello-world example of $1" >&2
}
# Takes server $1 off the list (a comparison server that is missing).
drop_server() { servers=$(echo " $servers " | sed "s/ $1 / /; s/^ *//; s/ *$//"); }

tokio_bin=""
if [[ " $servers " == *" tokio "* ]]; then
  if [ -z "$tokio_src" ]; then
    echo "note: skipping tokio: no comparison server given (--tokio-http DIR|BINARY or TOKIO_HTTP)" >&2
  elif [ -f "$tokio_src" ] && [ -x "$tokio_src" ]; then
    tokio_bin=$tokio_src
  elif [ -f "$tokio_src/Cargo.toml" ]; then
    (cd "$tokio_src" && CARGO_TARGET_DIR=$target/tokio-http cargo build --release -q --bin tokio-http) \
      && tokio_bin=$target/tokio-http/release/tokio-http \
      || echo "note: skipping tokio: could not build $tokio_src" >&2
  else
    echo "note: skipping tokio: $tokio_src is neither a binary nor a cargo project" >&2
  fi
  if [ -z "$tokio_bin" ]; then drop_server tokio; fi
fi

may_bin=""
if [[ " $servers " == *" may "* ]]; then
  if [ -z "$may_src" ]; then
    echo "note: skipping may: no comparison server given (--may-http DIR|BINARY or MAY_HTTP)" >&2
  elif [ -f "$may_src" ] && [ -x "$may_src" ]; then
    may_bin=$may_src
  elif [ -f "$may_src/Cargo.toml" ]; then
    may_bin=$(build_hello "$may_src" "$target/may-http" may)
  else
    echo "note: skipping may: $may_src is neither a binary nor a cargo project" >&2
  fi
  if [ -z "$may_bin" ]; then drop_server may; fi
fi

# may-unpinned: the same example built from a copy of the checkout with
# may's worker pinning off, the listen address taken from its arguments and
# the worker count from MAY_WORKERS (when set): may_minihttp placed as
# gopark places its workers by default.
mayu_bin=""
if [[ " $servers " == *" may-unpinned "* ]]; then
  mayu_src=$may_src
  if [ -f "$mayu_src" ]; then mayu_src=${mayu_src%/target/release/examples/hello-world}; fi
  if [ -f "$mayu_src/Cargo.toml" ] && [ -f "$mayu_src/examples/hello-world.rs" ]; then
    copy=$target/may-unpinned-src
    rm -rf "$copy" && mkdir -p "$copy"
    tar -C "$mayu_src" --exclude=./target -cf - . | tar -C "$copy" -xf -
    sed -i 's#HttpServer(HelloWorld).start("127.0.0.1:8080")#{ may::config().set_worker_pin(false); if let Ok(n) = std::env::var("MAY_WORKERS") { may::config().set_workers(n.parse().expect("MAY_WORKERS: a number")); } HttpServer(HelloWorld).start(std::env::args().nth(2).unwrap_or_else(|| "127.0.0.1:8080".to_string())) }#' \
      "$copy/examples/hello-world.rs"
    if ! grep -q set_worker_pin "$copy/examples/hello-world.rs"; then
      echo "note: skipping may-unpinned: $mayu_src/examples/hello-world.rs does not start its server as expected" >&2
    else
      mayu_bin=$(build_hello "$copy" "$target/may-unpinned" may-unpinned)
    fi
  else
    echo "note: skipping may-unpinned: needs may_minihttp's checkout (--may-http DIR, or the example's binary inside it)" >&2
  fi
  if [ -z "$mayu_bin" ]; then drop_server may-unpinned; fi
fi

# 1000 connections need more descriptors than the usual 1024 (wrk and server
# inherit this limit).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

server_cmd() { # name port -> command (always through env, which execs)
  case $1 in
    gopark) echo "env $gopark_bin --addr 127.0.0.1:$2" ;;
    gopark-w1) echo "env $gopark_bin --addr 127.0.0.1:$2 --workers 1" ;;
    gopark-pin) echo "env $gopark_bin --addr 127.0.0.1:$2 --pin" ;;
    tokio) echo "env TOKIO_WORKER_THREADS=${TOKIO_THREADS:-2} $tokio_bin 127.0.0.1:$2" ;;
    may) echo "env $may_bin 127.0.0.1:$2" ;;
    may-unpinned) echo "env $mayu_bin --addr 127.0.0.1:$2" ;;
    *) local nb
       for nb in ${HTTP_BINS:-}; do
         if [ "${nb%%=*}" = "$1" ]; then echo "env ${nb#*=} --addr 127.0.0.1:$2"; return; fi
       done
       echo "unknown server $1" >&2; exit 2 ;;
  esac
}
server_port() {
  case $1 in gopark) echo 7201 ;; gopark-w1) echo 7202 ;; gopark-pin) echo 7204 ;; tokio) echo 7203 ;; may) echo "${MAY_PORT:-8080}" ;; may-unpinned) echo 7205 ;;
    *) local nb i=0
       for nb in ${HTTP_BINS:-}; do
         i=$((i + 1)); if [ "${nb%%=*}" = "$1" ]; then echo $((7210 + i)); fi
       done ;;
  esac
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# The size of the server's answer to one `GET /`: wrk parses every response,
# so servers compared must send responses of about the same size (a stale
# comparison binary, or one with other headers, shows here).
response_bytes() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET / HTTP/1.1\r\nHost: bench\r\n\r\n' >&3 &&
    timeout 0.3 cat <&3) 2>/dev/null | wc -c
}
declare -A sized=()

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# One line per thread: tid comm ticks (comm may hold spaces: cut at the last ')').
task_ticks() {
  for f in /proc/"$1"/task/*/stat; do
    awk '{ l = index($0, "("); r = 0
           for (i = length($0); i > 0; i--) if (substr($0, i, 1) == ")") { r = i; break }
           comm = substr($0, l + 1, r - l - 1); gsub(/ /, "_", comm)
           split(substr($0, r + 2), a, " ")
           print $1, comm, a[12] + a[13] }' "$f" 2>/dev/null || true
  done
}
# Machine-wide idle ticks (idle + iowait, summed over CPUs) from /proc/stat:
# with the server and wrk sharing the CPUs, idle time during a run is
# throughput nobody used.
idle_ticks() { awk '/^cpu / {print $5 + $6; exit}' /proc/stat; }
ctxt() { # pid -> "voluntary involuntary", summed over threads
  cat /proc/"$1"/task/*/status 2>/dev/null |
    awk '/^voluntary_ctxt_switches/ {v += $2} /^nonvoluntary_ctxt_switches/ {n += $2} END {print v + 0, n + 0}'
}
hz=$(getconf CLK_TCK)
tmp=$(mktemp -d)
if [ -n "${HTTP_KEEP:-}" ]; then echo "# raw outputs kept in $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi
pin() { # cpus -> taskset prefix or nothing
  if [ -n "$1" ]; then echo "taskset -c $1"; fi
}

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit+dirty"; fi
echo "# http: $(date -u +%Y-%m-%d) commit $commit, $(nproc) CPUs, $(uname -r); wrk -t$threads, ${secs}s per run, $rounds rounds"
echo "# servers: $servers; conns: $conns; modes: $modes (pipeline = $depth requests per write)"
if [ -n "$scpus" ]; then echo "# pinned: server on CPU $scpus, wrk on CPU $ccpus"; else echo "# not pinned: server and wrk share the CPUs"; fi
results=$tmp/results.tsv
: >"$results"
printf "%-5s %-5s %-8s %-10s %10s %10s %8s %8s %5s  %s\n" round conns mode server "req/s" "CPU us/req" "vol cs" "invol cs" "idle" "threads (% of one CPU); errors"
for round in $(seq "$rounds"); do
  # Other work on the machine shows here first: a load average above the CPU
  # count means the servers and wrk were sharing the CPUs with it.
  echo "# round $round, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for c in $conns; do
    for mode in $modes; do
      for s in $servers; do
        port=$(server_port "$s")
        cmd=$(server_cmd "$s" "$port")
        # Something else listening there would be measured instead.
        if port_open "$port"; then
          echo "$s: port $port is already in use by another program; skipping this run" >&2
          continue
        fi
        # shellcheck disable=SC2086
        $(pin "$scpus") $cmd >"$tmp/server.out" 2>&1 &
        pid=$!
        up=0
        for _ in $(seq 100); do
          if port_open "$port"; then up=1; break; fi
          sleep 0.05
        done
        if [ $up = 0 ]; then
          echo "$s did not start; it said:" >&2; cat "$tmp/server.out" >&2
          kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
          continue
        fi
        if [ -z "${sized[$s]:-}" ]; then
          sized[$s]=1
          echo "# $s answers GET / with $(response_bytes "$port") bytes"
        fi
        task_ticks "$pid" >"$tmp/tasks.0"
        t0=$(ticks "$pid")
        read -r v0 n0 <<<"$(ctxt "$pid")"
        i0=$(idle_ticks)
        script=() extra=()
        if [ "$mode" = pipeline ]; then script=(-s "$root/benches/pipeline.lua"); extra=(-- "$depth"); fi
        out=$tmp/wrk.$round.$c.$mode.$s
        # shellcheck disable=SC2046
        $(pin "$ccpus") wrk -t"$threads" -c"$c" -d"${secs}s" "${script[@]}" "http://127.0.0.1:$port/" "${extra[@]}" >"$out" 2>&1 || true
        t1=$(ticks "$pid")
        i1=$(idle_ticks)
        read -r v1 n1 <<<"$(ctxt "$pid")"
        task_ticks "$pid" >"$tmp/tasks.1"
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true

        reqs=$(awk '/requests in/ {print $1; exit}' "$out")
        rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2; exit}' "$out")
        if [ -z "${reqs:-}" ] || [ "$reqs" = 0 ]; then
          echo "$s: no requests completed; wrk said:" >&2; cat "$out" >&2; continue
        fi
        cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v n="$reqs" 'BEGIN {printf "%.2f", (b - a) / hz * 1e6 / n}')
        idle=$(awk -v a="$i0" -v b="$i1" -v hz="$hz" -v secs="$secs" -v n="$(nproc)" 'BEGIN {printf "%.0f", (b - a) / hz / (secs * n) * 100}')
        split=$(awk -v hz="$hz" -v secs="$secs" '
          NR == FNR {before[$1] = $3; next}
          { d = $3 - before[$1]; if (d > 0) printf "%s %.0f%%, ", $2, d / hz / secs * 100 }' \
          "$tmp/tasks.0" "$tmp/tasks.1" | sed 's/, $//')
        errs=$(awk '/Socket errors/ {sub(/^ *Socket errors: */, ""); printf "socket errors: %s; ", $0}
                    /Non-2xx/ {printf "non-2xx: %s; ", $NF}' "$out" | sed 's/; $//')
        printf "%-5s %-5s %-8s %-10s %10s %10s %8s %8s %4s%%  %s%s\n" "$round" "$c" "$mode" "$s" "$rps" "$cpu" \
          $((v1 - v0)) $((n1 - n0)) "$idle" "${split:-?}" "${errs:+; $errs}"
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$c" "$mode" "$s" "$rps" "$cpu" $((v1 - v0)) $((n1 - n0)) "$round" "$idle" >>"$results"
      done
    done
  done
done

# Medians and spread (min..max, and (max-min)/median) per configuration.
echo
echo "# medians over $rounds rounds (spread: min..max)"
printf "%-5s %-8s %-10s %10s %17s %7s %10s %13s %9s %9s %5s\n" conns mode server "req/s" "min..max" "spread" "CPU us/req" "min..max" "vol cs" "invol cs" "idle"
median() { sort -g | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
for c in $conns; do
  for mode in $modes; do
    for s in $servers; do
      sel() { awk -F'\t' -v c="$c" -v m="$mode" -v s="$s" -v f="$1" '$1 == c && $2 == m && $3 == s {print $f}' "$results"; }
      [ -n "$(sel 4)" ] || continue
      r_med=$(sel 4 | median); r_min=$(sel 4 | sort -g | head -1); r_max=$(sel 4 | sort -g | tail -1)
      c_med=$(sel 5 | median); c_min=$(sel 5 | sort -g | head -1); c_max=$(sel 5 | sort -g | tail -1)
      v_med=$(sel 6 | median); n_med=$(sel 7 | median); i_med=$(sel 9 | median)
      spread=$(awk -v a="$r_min" -v b="$r_max" -v m="$r_med" 'BEGIN {printf "%.0f%%", (b - a) / m * 100}')
      printf "%-5s %-8s %-10s %10.0f %17s %7s %10.2f %13s %9.0f %9.0f %4.0f%%\n" "$c" "$mode" "$s" "$r_med" "$r_min..$r_max" "$spread" \
        "$c_med" "$c_min..$c_max" "$v_med" "$n_med" "$i_med"
    done
  done
done

# Paired ratios: each server against the first one listed, round by round
# (the runs of one round ran back to back, so they shared the machine's
# state), then the median of those ratios and their spread: steadier than
# the ratio of the medians above when the machine's speed drifts.
first=${servers%% *}
if [ "$first" != "$servers" ]; then
  echo
  echo "# paired ratios against $first, per round: median (min..max)"
  printf "%-5s %-8s %-10s %24s %24s\n" conns mode server "req/s ratio" "CPU/req ratio"
  for c in $conns; do
    for mode in $modes; do
      for s in $servers; do
        [ "$s" = "$first" ] && continue
        ratios() { # field -> one ratio per round that has both runs
          awk -F'\t' -v c="$c" -v m="$mode" -v a="$first" -v b="$s" -v f="$1" '
            $1 == c && $2 == m && $3 == a {x[$8] = $f}
            $1 == c && $2 == m && $3 == b {y[$8] = $f}
            END {for (r in y) if ((r in x) && x[r] > 0) printf "%.3f\n", y[r] / x[r]}' "$results"
        }
        [ -n "$(ratios 4)" ] || continue
        rr="$(ratios 4 | median) ($(ratios 4 | sort -g | head -1)..$(ratios 4 | sort -g | tail -1))"
        cr="$(ratios 5 | median) ($(ratios 5 | sort -g | head -1)..$(ratios 5 | sort -g | tail -1))"
        printf "%-5s %-8s %-10s %24s %24s\n" "$c" "$mode" "$s" "$rr" "$cr"
      done
    done
  done
fi
