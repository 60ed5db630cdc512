#!/usr/bin/env bash
# Skynet harness: examples/skynet.rs against benches/go/skynet.go (the same
# program in Go), interleaved (A B A B ...) for N rounds, at each worker
# count (gopark --workers N against GOMAXPROCS=N).
#
# Every round starts each program afresh; the program does --runs trees in a
# row and prints each one's wall time. Reported per program and worker count:
# the first tree of each process ("cold": stacks and heap not yet grown) and
# the others ("warm"), as medians with min..max over all rounds; the
# process's CPU time per tree (user + system, all threads); and its peak
# resident memory (/usr/bin/time's "Maximum resident set size").
#
# Usage: benches/skynet.sh [--rounds 5] [--runs 3] [--workers "2 1"]
#                          [--size 1000000] [--div 10]
#
# SKYNET_BINS="name=PATH ..." adds other builds of examples/skynet.rs to the
# rotation (to compare a change against a build of the previous commit).
# Needs: /usr/bin/time (Debian: `apt-get install -y time`); go for the Go
# side (`apt-get install -y golang-go`; skipped with a note without it).
# SKYNET_KEEP=1 keeps the raw outputs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=5 runs=3 workers="2 1" size=1000000 div=10
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2 ;; --runs) runs=$2 ;; --workers) workers=$2 ;;
    --size) size=$2 ;; --div) div=$2 ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift 2
done
if [ ! -x /usr/bin/time ]; then
  echo "/usr/bin/time not found: install it (Debian/Ubuntu: apt-get install -y time)" >&2
  exit 1
fi

cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
cargo build --release -q --example skynet
tmp=$(mktemp -d)
if [ -n "${SKYNET_KEEP:-}" ]; then echo "# raw outputs kept in $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi

names=(gopark) paths=("$target/release/examples/skynet")
for nb in ${SKYNET_BINS:-}; do names+=("${nb%%=*}"); paths+=("${nb#*=}"); done
if command -v go >/dev/null; then
  if go build -o "$tmp/skynet-go" benches/go/skynet.go; then names+=(go); paths+=("$tmp/skynet-go"); fi
else
  echo "note: skipping Go: go not found (apt-get install -y golang-go)" >&2
fi

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit+dirty"; fi
echo "# skynet: $(date -u +%Y-%m-%d) commit $commit, $(nproc) CPUs, $(uname -r); size $size, div $div, $runs trees per process, $rounds rounds"
echo "# programs: ${names[*]}; workers: $workers"
results=$tmp/results.tsv
: >"$results"
for round in $(seq "$rounds"); do
  echo "# round $round, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for w in $workers; do
    for i in "${!names[@]}"; do
      name=${names[$i]} bin=${paths[$i]} out=$tmp/out.$round.$w.${names[$i]}
      if [ "$name" = go ]; then
        cmd=(env GOMAXPROCS="$w" "$bin" -runs "$runs" -size "$size" -div "$div")
      else
        cmd=("$bin" --workers "$w" --runs "$runs" --size "$size" --div "$div")
      fi
      if ! /usr/bin/time -f "time %U %S %M" -o "$out.time" "${cmd[@]}" >"$out" 2>"$out.err"; then
        echo "$name (workers $w) failed:" >&2; cat "$out" "$out.err" >&2; continue
      fi
      read -r _ user sys rss <"$out.time"
      ms=$(sed -n 's/.* ms=\([0-9.]*\).*/\1/p' "$out" | tr '\n' ' ')
      cpu=$(awk -v u="$user" -v s="$sys" -v n="$runs" 'BEGIN {printf "%.0f", (u + s) * 1000 / n}')
      printf "%-5s w=%-2s %-8s tree ms: %-30s CPU ms/tree %6s  peak RSS %7.1f MiB\n" "$round" "$w" "$name" "$ms" "$cpu" "$(awk -v k="$rss" 'BEGIN {print k / 1024}')"
      k=0
      for m in $ms; do
        k=$((k + 1))
        if [ $k = 1 ]; then kind=cold; else kind=warm; fi
        printf "%s\t%s\t%s\t%s\n" "$w" "$name" "$kind" "$m" >>"$results"
      done
      printf "%s\t%s\tcpu\t%s\n" "$w" "$name" "$cpu" >>"$results"
      printf "%s\t%s\trss\t%s\n" "$w" "$name" "$(awk -v k="$rss" 'BEGIN {printf "%.1f", k / 1024}')" >>"$results"
    done
  done
done

echo
echo "# medians over $rounds rounds (min..max); cold = first tree of a process, warm = the others"
printf "%-7s %-8s %22s %22s %22s %24s\n" workers program "cold ms" "warm ms" "CPU ms/tree" "peak RSS MiB"
median() { sort -g | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
for w in $workers; do
  for name in "${names[@]}"; do
    col() {
      local v
      v=$(awk -F'\t' -v w="$w" -v n="$name" -v k="$1" '$1 == w && $2 == n && $3 == k {print $4}' "$results")
      [ -n "$v" ] || { echo "-"; return; }
      echo "$(echo "$v" | median) ($(echo "$v" | sort -g | head -1)..$(echo "$v" | sort -g | tail -1))"
    }
    printf "%-7s %-8s %22s %22s %22s %24s\n" "$w" "$name" "$(col cold)" "$(col warm)" "$(col cpu)" "$(col rss)"
  done
done
