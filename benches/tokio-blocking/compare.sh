#!/usr/bin/env bash
# gopark::blocking(|| ()) against tokio's spawn_blocking(|| ()).await, both
# called from a coroutine/task on a runtime with 1 and 2 workers, measured
# with criterion and interleaved (gopark, tokio, gopark, tokio, ...) so that
# a change in the machine's load hits both alike. Prints each run's median
# estimate and, at the end, the median over runs with min..max.
#
# Usage: benches/tokio-blocking/compare.sh [ROUNDS (default 3)]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
rounds=${1:-3}
opts=(--warm-up-time 1 --measurement-time 3 --noplot)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root"
cargo bench -q --bench blocking --no-run
cargo bench -q --manifest-path benches/tokio-blocking/Cargo.toml --no-run
# criterion prints "NAME\n   time:   [low MEDIAN high]" (or one line for short names).
est() { awk '/^[a-z_0-9]+/ { name = $1 } /time:/ { for (i = 1; i <= NF; i++) if ($i ~ /^\[/) { print name, $(i + 2), $(i + 3); break } }'; }
for r in $(seq "$rounds"); do
  echo "# round $r, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  cargo bench -q --bench blocking -- blocking_unit_round_trip "${opts[@]}" 2>/dev/null | est | tee -a "$tmp/all"
  cargo bench -q --manifest-path benches/tokio-blocking/Cargo.toml -- "${opts[@]}" 2>/dev/null | est | tee -a "$tmp/all"
done
echo "# median over $rounds rounds (min..max), time per round trip"
sort -k1,1 -s "$tmp/all" | awk '
  function flush(   i, j, t, m) {
    if (n == 0) return
    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
    printf "%-45s %8.2f %s (%.2f..%.2f)\n", cur, v[int((n + 1) / 2)], unit, v[1], v[n]
    n = 0
  }
  $1 != cur { flush(); cur = $1 }
  { v[++n] = $2 + 0; unit = $3 }
  END { flush() }'
