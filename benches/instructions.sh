#!/usr/bin/env bash
# Instructions per element of segloss's passes and of the same-bytes ceiling kernel,
# counted by callgrind on lavapipe with one thread: a measure that machine load does not
# move (docs/performance.md). Runs `segloss bench --instructions` (the workloads: see
# crates/segloss-cli/src/bench/instructions.rs) once under valgrind; callgrind dumps its
# counters at every block boundary, and each workload's count per call is
# (count of 3 calls − count of 1 call) / 2, without setup or pipeline compilation.
#
#   benches/instructions.sh [SHAPE]        default SHAPE 1x19x128x128
#   SEGLOSS=path/to/segloss benches/instructions.sh
#
# Prints, per workload, instructions per element and per call; then per loss the
# statistics pass ("loss": tile_sums + the reductions + readback), the gradient pass
# (loss+grad − loss: coef + grad) and loss+grad as a multiple of the ceiling (reduce +
# stream) for the same bytes. Needs valgrind and lavapipe; takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SEGLOSS:-target/release/segloss}
shape=${1:-1x19x128x128}
[ -x "$bin" ] || { echo "no $bin: cargo build --release --workspace --all-targets" >&2; exit 2; }
command -v valgrind > /dev/null || { echo "valgrind not found" >&2; exit 2; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export LP_NUM_THREADS=1 NODEVICE_SELECT=1
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$dir}
valgrind --tool=callgrind --dump-before='*instructions*mark*' \
    --callgrind-out-file="$dir/cg" "$bin" bench --instructions --shapes "$shape" \
    > "$dir/workloads" 2> "$dir/valgrind.log" || {
    tail -20 "$dir/valgrind.log" >&2
    exit 1
}
# Dumps are numbered in order: per workload 3 (warm-up, the 1-call block, the 3-call block).
totals() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }
echo "callgrind, lavapipe LP_NUM_THREADS=1, shape $shape, $(date -u +%F), $("$bin" --version 2>/dev/null || echo segloss)"
[ -n "${SEGLOSS_MATH:-}" ] && echo "SEGLOSS_MATH=$SEGLOSS_MATH"
[ -n "${SEGLOSS_SAVED_NORMS:-}" ] && echo "SEGLOSS_SAVED_NORMS=$SEGLOSS_SAVED_NORMS"
k=0
while read -r name elems; do
    a=$(totals "$dir/cg.$((3 * k + 2))")
    b=$(totals "$dir/cg.$((3 * k + 3))")
    echo "$name $elems $a $b"
    k=$((k + 1))
done < "$dir/workloads" | awk '
{
    per = ($4 - $3) / 2.0
    call[$1] = per
    elem[$1] = per / $2
    order[n++] = $1
}
END {
    printf "%-26s %12s %14s\n", "workload", "instr/elem", "instr/call"
    for (i = 0; i < n; i++) printf "%-26s %12.1f %14.0f\n", order[i], elem[order[i]], call[order[i]]
    # The ceiling: the cheapest (reduce + stream) pair over the shapes it was run in.
    ceil = -1
    for (w in elem) if (w ~ /^ceiling\..*\.reduce$/) {
        p = substr(w, 1, length(w) - length("reduce"))
        c = elem[w] + elem[p "stream"]
        if (ceil < 0 || c < ceil) { ceil = c; best = substr(p, 9, length(p) - 9) }
    }
    printf "\nceiling (reduce + stream, WGxQPI %s): %.1f instr/elem\n", best, ceil
    printf "%-16s %10s %10s %12s %16s\n", "loss", "stats", "grad", "loss+grad", "x ceiling"
    split("soft.dice soft.ce+dice index.dice index.ce+dice", L, " ")
    for (j = 1; j <= 4; j++) {
        l = L[j]
        s = elem[l ".loss"]; t = elem[l ".loss+grad"]
        printf "%-16s %10.1f %10.1f %12.1f %15.2fx\n", l, s, t - s, t, t / ceil
    }
}'
