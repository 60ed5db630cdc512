#!/usr/bin/env bash
# User-space instructions per echo request, measured with callgrind.
#
# Usage: benches/instr.sh [--conns 8] [--size 64] [--short 2] [--long 6]
#                         [--warmup 1] [--workers 1] [--top 25] [--port 0]
#                         [--cpu 0] [--server PATH] [--client PATH] [--keep DIR]
#
# Runs the `echo` example (or --server PATH, a build of it) under
# `valgrind --tool=callgrind`, drives it with `echo_client` (run natively),
# and measures two client runs against the same server process, after a
# warm-up run: for each, the counters are zeroed (`callgrind_control -z`),
# the client runs for --short (then --long) seconds, and the counters are
# dumped (`callgrind_control -d`). The figure is the difference of the two:
#
#     (instructions of the long run - of the short run)
#   / (requests of the long run - of the short run)
#
# so start-up and anything else a run pays once (the connections' accept,
# spawn and close) cancel out.
#
# Server and client run pinned to one CPU (--cpu N; --cpu none to not pin):
# the client then fills every connection whenever the server blocks, so the
# batches the server finds per poll, and with them its figure, repeat from
# run to run: the worker's figure to about 1 instruction per request
# (unpinned on a loaded machine it moved by +-70). Now and then a run on a
# loaded machine still lands some 25% higher (the server found smaller
# batches: more polls and sleeps per request): take 3 runs, read the median.
#
# Prints: the requests and instructions of each run (and each run's own
# ratio, for comparison), the instructions per request of all threads
# (the difference above), the same per thread (valgrind's thread numbers;
# the largest is the worker; with --workers 1 the second is the runtime's
# monitor, which wakes every 10 ms whatever the load: valgrind runs the
# server some 50x slower than native, so its share per request is several
# times its native one and moves with the machine's load: compare cuts on
# the worker's figure), then the top functions per request, all threads:
# by self cost, by self cost per inlined source file, and inclusive. Self
# costs are summed over a function's inlined source files and its
# recursion levels (callgrind's 'N suffixes), so a row is what the
# function's own machine code executes. Inclusive costs are only
# meaningful for functions that do not switch stacks: callgrind's call
# tracking counts a coroutine's run (and the worker loop around it) more
# than once, so rows such as `execute`, `resume`, `run`, the socket
# `read`/`write` or `PollDesc::wait` overstate; use the self tables there.
#
# VALGRIND_ARGS adds options to valgrind (e.g. "--dump-instr=yes" to look at
# the kept dumps per instruction, with --keep DIR).
#
# callgrind counts are repeatable: machine load changes the request rate,
# not the worker's instructions per request (pinned); still take 2-3 runs.
# Needs: valgrind (callgrind_control, callgrind_annotate), taskset.
set -euo pipefail
export LC_ALL=C
root=$(cd "$(dirname "$0")/.." && pwd)
conns=8 size=64 short=2 long=6 warmup=1 workers=1 top=25 port=0 cpu=0
server="" client="" keep=""
while [ $# -gt 0 ]; do
  case $1 in
    --conns) conns=$2 ;; --size) size=$2 ;; --short) short=$2 ;; --long) long=$2 ;;
    --warmup) warmup=$2 ;; --workers) workers=$2 ;; --top) top=$2 ;; --port) port=$2 ;;
    --cpu) cpu=$2 ;; --server) server=$2 ;; --client) client=$2 ;; --keep) keep=$2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done

cd "$root"
if [ "$cpu" != none ]; then
  # Everything started from here on (valgrind, the clients) inherits it.
  taskset -pc "$cpu" $$ >/dev/null
fi
target=${CARGO_TARGET_DIR:-$root/target}
if [ -z "$server" ] || [ -z "$client" ]; then
  cargo build --release -q --example echo --example echo_client
fi
server=${server:-$target/release/examples/echo}
client=${client:-$target/release/examples/echo_client}

if [ -n "$keep" ]; then
  mkdir -p "$keep"
  tmp=$keep
else
  tmp=$(mktemp -d)
fi
spid=""
cleanup() {
  if [ -n "$spid" ] && kill -0 "$spid" 2>/dev/null; then
    kill -TERM "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
  fi
  [ -n "$keep" ] || rm -rf "$tmp"
}
trap cleanup EXIT

# shellcheck disable=SC2086 # VALGRIND_ARGS is a list of options
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$tmp/callgrind.out.%p" \
  ${VALGRIND_ARGS:-} \
  "$server" --addr "127.0.0.1:$port" --workers "$workers" >"$tmp/server.log" 2>&1 &
spid=$!
for _ in $(seq 1 300); do
  grep -q "listening" "$tmp/server.log" && break
  kill -0 "$spid" 2>/dev/null || { cat "$tmp/server.log" >&2; exit 1; }
  sleep 0.1
done
grep -q "listening" "$tmp/server.log" || { echo "server did not start" >&2; exit 1; }
# --port 0 (the default): the port the kernel chose, as the server prints it.
addr=$(sed -n 's/^echo: listening on \([^ ]*\) .*/\1/p' "$tmp/server.log")

run_client() { # secs -> number of requests
  "$client" --addr "$addr" --conns "$conns" --size "$size" --secs "$1" \
    | sed -n 's/.* \([0-9][0-9]*\) requests,.*/\1/p'
}

# Zero the counters, run the client, dump; prints the number of requests.
# The dump is one file per thread: callgrind.out.PID.PART-THREAD.
measure() { # secs part
  callgrind_control -z "$spid" >/dev/null 2>&1
  local n
  n=$(run_client "$1")
  callgrind_control -d "$spid" >/dev/null 2>&1
  for _ in $(seq 1 100); do
    [ -n "$(dump "$2")" ] && break
    sleep 0.1
  done
  echo "$n"
}

dump() { ls "$tmp/callgrind.out.$spid.$1"-* 2>/dev/null; }
total() { cat "$@" | sed -n 's/^summary: //p' | awk '{ s += $1 } END { print s + 0 }'; }
thread_totals() { # part -> "thread instructions" lines
  for f in $(dump "$1"); do
    echo "$(sed -n 's/^thread: //p' "$f") $(sed -n 's/^summary: //p' "$f")"
  done
}

run_client "$warmup" >/dev/null
n1=$(measure "$short" 1)
n2=$(measure "$long" 2)
mapfile -t f1 < <(dump 1)
mapfile -t f2 < <(dump 2)
i1=$(total "${f1[@]}")
i2=$(total "${f2[@]}")

echo "# echo under callgrind: $conns conns x $size B, --workers $workers; server $server"
echo "short run: ${short} s, $n1 requests, $i1 instructions ($((i1 / n1)) per request)"
echo "long run:  ${long} s, $n2 requests, $i2 instructions ($((i2 / n2)) per request)"
if [ "$((2 * n2))" -lt "$((3 * n1))" ]; then
  echo "note: the long run served less than 1.5x the short one's requests (a loaded machine slows valgrind): the difference is imprecise; compare the per-run ratios, or rerun" >&2
fi
if [ "$n2" -le "$n1" ]; then
  echo "the long run served no more requests than the short one: no difference to take" >&2
  exit 1
fi
awk -v a="$i1" -v b="$i2" -v x="$n1" -v y="$n2" \
  'BEGIN { printf "instructions per request: %.1f (difference of the runs, all threads)\n", (b - a) / (y - x) }'
echo "per thread (valgrind's thread number; the largest is the worker):"
join <(thread_totals 1 | sort) <(thread_totals 2 | sort) \
  | awk -v x="$n1" -v y="$n2" '{ printf "  thread %s: %.1f\n", $1, ($3 - $2) / (y - x) }' \
  | sort -k3 -rn

# Self cost per function of a dump, one "cost<TAB>function" line each,
# read from the dump itself: callgrind_annotate counts the cost of calls
# still in progress at the dump (the worker's and the coroutines' frames)
# as self cost of every frame on the stack. Summed over inlined files and
# recursion levels; with "split", per inlined source file instead.
self_fn() { # files...
  awk -v split_files="${split:-}" '
    function name(kind, v,   id, rest) {
      if (v ~ /^\([0-9]+\)/) {
        id = v; sub(/\).*/, ")", id)
        rest = v; sub(/^\([0-9]+\) ?/, "", rest)
        if (rest != "") names[kind, id] = rest
        return names[kind, id]
      }
      return v
    }
    FNR == 1 { delete names }             # name compression is per file
    /^positions:/ { col = NF }            # cost column = number of positions + 1
    /^fl=/ { fl = name("f", substr($0, 4)); fi = fl; next }
    /^f[ie]=/ { fi = name("f", substr($0, 4)); next }
    /^fn=/ { fn = name("n", substr($0, 4)); sub(/\x27[0-9]+$/, "", fn); next }
    /^cf[il]=/ { name("f", substr($0, 5)); next }
    /^cfn=/ { name("n", substr($0, 5)); next }
    /^calls=/ { skip = 1; next }
    /^(jump|jcnd)=/ { next }
    /^[0-9+*-]/ {
      if (skip) { skip = 0; next }
      if (split_files) {
        f = fi; sub(/^.*\/(src|library)\//, "", f); key = f ":" fn
      } else key = fn
      cost[key] += $col
    }
    END { for (k in cost) printf "%s\t%s\n", cost[k], k }' "$@"
}

# Inclusive cost per function (callgrind_annotate), summed like self_fn.
incl_fn() { # files...
  for f in "$@"; do
    callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$f" 2>/dev/null
  done | awk '
    /file:function/ { on = 1; next }
    on && /^$/ { on = 0 }
    on && /^ *[0-9][0-9,]* \( *[0-9.]+%\)  / {
      c = $1; gsub(",", "", c)
      s = $0; sub(/^ *[0-9,]+ \( *[0-9.]+%\)  /, "", s)
      if (s ~ /PROGRAM TOTALS/) next
      sub(/ \[[^]]*\]$/, "", s)          # the binary
      sub(/\x27[0-9]+$/, "", s)          # recursion level
      i = index(s, ":"); f = substr(s, i + 1)
      cost[f] += c
    }
    END { for (f in cost) printf "%s\t%s\n", cost[f], f }'
}

table() { # title command...
  local title=$1
  shift
  echo
  echo "# $title per request (difference of the runs), top $top"
  join -t $'\t' -j 2 -a 1 -a 2 -e 0 -o 0,1.1,2.1 \
    <("$@" "${f1[@]}" | sort -t $'\t' -k2,2) \
    <("$@" "${f2[@]}" | sort -t $'\t' -k2,2) \
    | awk -F'\t' -v x="$n1" -v y="$n2" '{ printf "%9.1f  %s\n", ($3 - $2) / (y - x), $1 }' \
    | sort -rn | head -n "$top"
}

split_fn() { split=1 self_fn "$@"; }

table "self cost" self_fn
table "self cost by inlined source file (file:function)" split_fn
table "inclusive cost (not meaningful across stack switches, see the header)" incl_fn
