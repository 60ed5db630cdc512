#!/usr/bin/env bash
# Instructions per spawn + join of an empty coroutine (warm), counted with
# callgrind: repeatable where wall time on a shared machine is not.
#
# Builds a tiny program against this checkout (in $SPAWN_INSTR_DIR, default
# $CARGO_TARGET_DIR/spawn-instr, else target/spawn-instr): on a one-worker runtime, one coroutine does 1,000
# warm-up spawn + join pairs, then N more. It runs under callgrind for
# N = N1 and N = N2; the difference of the two totals, divided by N2 - N1,
# is the cost of one spawn + join, start-up and warm-up cancelled out. The
# same difference, function by function (inclusive costs), gives the map:
# the functions that cost most per spawn + join, callees included.
#
# Usage: benches/spawn_instr.sh [--n1 100000] [--n2 200000] [--top 40]
#
# Needs: valgrind (Debian: `apt-get install -y valgrind`). The program is
# built with the release profile plus debug info (for function names).
# SPAWN_INSTR_KEEP=1 keeps the callgrind outputs in $SPAWN_INSTR_DIR.
set -euo pipefail

n1=100000
n2=200000
top=40
while [ $# -gt 0 ]; do
    case "$1" in
        --n1) n1="$2"; shift 2 ;;
        --n2) n2="$2"; shift 2 ;;
        --top) top="$2"; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${SPAWN_INSTR_DIR:-${CARGO_TARGET_DIR:-$root/target}/spawn-instr}"
mkdir -p "$dir/src"
cat > "$dir/Cargo.toml" <<EOF
[package]
name = "spawn-instr"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
gopark = { path = "$root" }

[profile.release]
debug = 1

[workspace]
EOF
cat > "$dir/src/main.rs" <<'EOF'
fn main() {
    let n: u64 = std::env::args().nth(1).map_or(100_000, |s| s.parse().unwrap());
    let rt = gopark::Runtime::builder().workers(1).build().unwrap();
    rt.run(move || {
        for _ in 0..1000 {
            gopark::spawn(|| ()).join().unwrap();
        }
        for _ in 0..n {
            gopark::spawn(|| ()).join().unwrap();
        }
    });
}
EOF
[ -f "$dir/Cargo.lock" ] || cp "$root/Cargo.lock" "$dir/Cargo.lock" 2>/dev/null || true
(cd "$dir" && CARGO_TARGET_DIR="$dir/target" cargo build --release --quiet)
bin="$dir/target/release/spawn-instr"

for n in "$n1" "$n2"; do
    valgrind --tool=callgrind --callgrind-out-file="$dir/cg.$n" "$bin" "$n" \
        > /dev/null 2> "$dir/cg.$n.log"
done

# "1,234 (12.3%)  /path/file.rs:function [object]"
#   -> "1234<TAB>file.rs:function" (callgrind splits a function's cost by the
#   source file of its inlined code, so one function may show several times).
incl() {
    callgrind_annotate --inclusive=yes --auto=no --threshold=100 "$1" 2>/dev/null |
        awk '/^ *[0-9,]+ \(/ {
            ir = $1; gsub(",", "", ir)
            sub(/^ *[0-9,]+ \( *[0-9.]+%\) +/, ""); sub(/ \[[^]]*\]$/, "")
            sub(/^[^:]*\//, "")
            print ir "\t" $0
        }' | LC_ALL=C sort -t $'\t' -k2,2 -u
}
total() {
    callgrind_annotate "$1" 2>/dev/null |
        awk '/PROGRAM TOTALS/ && !done { gsub(",", "", $1); print $1; done = 1 }'
}

t1=$(total "$dir/cg.$n1")
t2=$(total "$dir/cg.$n2")
awk -v a="$t1" -v b="$t2" -v n1="$n1" -v n2="$n2" 'BEGIN {
    printf "instructions per spawn + join: %.0f  (totals %d at N=%d, %d at N=%d)\n", (b - a) / (n2 - n1), a, n1, b, n2
}'
echo
echo "inclusive instructions per spawn + join, by function (top $top):"
# The frames around the whole loop (the worker, the spawning coroutine's
# entry) cost the total: left out, as are, through the recursion of the
# coroutine switch, the callees callgrind then counts more than once.
LC_ALL=C join -t $'\t' -1 2 -2 2 -o 0,1.1,2.1 <(incl "$dir/cg.$n1") <(incl "$dir/cg.$n2") |
    awk -F '\t' -v n="$((n2 - n1))" -v t="$t2" -v p="$(( (t2 - t1) / (n2 - n1) ))" \
        '$3 < t { d = ($3 - $2) / n; if (d >= 1 && d < 0.99 * p) printf "%8.0f  %s\n", d, $1 }' |
    sort -rn | head -n "$top" || true

if [ -z "${SPAWN_INSTR_KEEP:-}" ]; then
    rm -f "$dir/cg.$n1" "$dir/cg.$n2" "$dir/cg.$n1.log" "$dir/cg.$n2.log"
fi
