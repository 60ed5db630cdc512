#!/usr/bin/env bash
# Liveness table: 20 coroutines (goroutines) sleep 10 ms in a loop while one
# more does a blocking call, a big file read, a CPU loop or a slow name
# lookup; counts the sleepers that stalled (a gap over 200 ms) and the worst
# gap, for gopark (examples/stall.rs) and Go (benches/go/stall.go), 1 and 2
# workers (GOMAXPROCS), interleaved run by run, and counts the stall
# monitor's reports of the `work` coroutine on gopark's stderr.
#
# Usage: benches/stall.sh [--rounds 3] [--workers "1 2"] [--file PATH] [--dns-delay-ms 2000]
#
# The read rows read PATH (default /tmp/gopark-stall-1g), written here with
# 1 GiB of zeros if it does not exist (real blocks, not a sparse file) and
# read once before the runs, so every run reads it from the page cache.
#
# The name rows need a name server that is slow to answer. The script
# re-runs itself in a private network and mount namespace (unshare; as root,
# or as a user where unprivileged user namespaces are enabled), brings up
# loopback there, bind-mounts a resolv.conf naming 127.0.0.1 over
# /etc/resolv.conf (in that namespace only), and starts `stall dns` there,
# which answers every query after --dns-delay-ms. Without unshare the name
# rows are skipped with a note. Go's column needs `go` (apt-get install
# golang-go); without it, it is skipped with a note.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
self=$root/benches/$(basename "$0")
target=${CARGO_TARGET_DIR:-$root/target}
rounds=3 workers="1 2" file=/tmp/gopark-stall-1g delay=2000
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2 ;; --workers) workers=$2 ;; --file) file=$2 ;;
    --dns-delay-ms) delay=$2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
stall=$target/release/examples/stall
stall_go=$target/stall-go

if [ -z "${STALL_NS:-}" ]; then
  # Outside the namespace: build (cargo may need the network), make the file.
  cd "$root"
  cargo build --release -q --example stall
  if command -v go >/dev/null; then
    go build -o "$stall_go" benches/go/stall.go
  else
    echo "note: go not found: the Go column is skipped" >&2
    rm -f "$stall_go"
  fi
  if [ ! -f "$file" ]; then
    echo "# writing $file (1 GiB of zeros)"
    head -c 1073741824 /dev/zero >"$file"
  fi
  cat "$file" >/dev/null
  for u in "" "-r"; do
    if unshare $u --net --mount true 2>/dev/null; then
      exec env STALL_NS=1 unshare $u --net --mount "$self" --rounds "$rounds" --workers "$workers" \
        --file "$file" --dns-delay-ms "$delay"
    fi
  done
  echo "note: cannot create a network and mount namespace (unshare): the name rows are skipped" >&2
  export STALL_NS=none
fi

names=0
if [ "$STALL_NS" = 1 ]; then
  ip link set lo up
  conf=$(mktemp)
  printf 'nameserver 127.0.0.1\noptions timeout:5 attempts:1\n' >"$conf"
  mount --bind "$conf" /etc/resolv.conf
  "$stall" dns 127.0.0.1:53 "$delay" &
  dns=$!
  names=1
fi

tmp=$(mktemp -d)
trap 'if [ -n "${dns:-}" ]; then kill "$dns" 2>/dev/null; fi; rm -rf "$tmp" ${conf:+"$conf"}' EXIT
results=$tmp/results

run_gopark() { # row workers
  local out
  out=$("$stall" "$1" --workers "$2" --file "$file" 2>"$tmp/err")
  local reports
  reports=$(grep -c "coroutine 'work' (id [0-9]*) has run on worker" "$tmp/err" || true)
  echo "gopark $out monitor=$reports" | tee -a "$results"
}
run_go() { # row workers
  [ -x "$stall_go" ] || return 0
  local out
  out=$(GOMAXPROCS=$2 "$stall_go" -file "$file" "$1")
  echo "go $out" | tee -a "$results"
}

groups=("thread-sleep blocking-sleep|thread-sleep" "std-read fs-read fs-read-free|std-read" "cpu cpu-blocking|cpu")
[ "$names" = 1 ] && groups+=("std-resolve lookup-host connect|connect")
echo "# commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) CPUs"
for r in $(seq "$rounds"); do
  echo "# round $r, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for g in "${groups[@]}"; do
    for w in $workers; do
      for row in ${g%|*}; do run_gopark "$row" "$w"; done
      run_go "${g#*|}" "$w"
    done
  done
done

echo
echo "# medians over $rounds rounds (min..max)"
awk '
  function field(name,   i) { for (i = 1; i <= NF; i++) if (index($i, name "=") == 1) return substr($i, length(name) + 2); return "" }
  function sort(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
  {
    k = $1 " " $2 " " field("workers")
    if (!(k in n)) order[++keys] = k
    i = ++n[k]
    s = field("stalled"); sub("/.*", "", s); st[k, i] = s + 0
    wo[k, i] = field("worst_ms") + 0
    mon[k] += field("monitor") + 0
    if (field("error") != "") err[k] = field("error")
  }
  END {
    printf "%-32s %-14s %-22s %s\n", "impl row workers", "stalled of 20", "worst gap ms", "monitor reports"
    for (q = 1; q <= keys; q++) {
      k = order[q]; m = n[k]
      for (i = 1; i <= m; i++) { a[i] = st[k, i]; b[i] = wo[k, i] }
      sort(a, m); sort(b, m)
      mid = int((m + 1) / 2)
      split(k, p, " ")
      printf "%-32s %-14s %-22s %s%s\n", k, a[mid] " (" a[1] ".." a[m] ")", b[mid] " (" b[1] ".." b[m] ")",
        (p[1] == "go" ? "-" : mon[k] "/" m), (k in err ? "  error: " err[k] : "")
    }
  }' "$results"
