#!/usr/bin/env bash
# Dice loss+grad on one shape (default [4, 19, 512, 512]), soft and index targets, in one
# run: segloss GPU-resident on lavapipe and its same-bytes ceiling (`segloss bench`), and
# MONAI's DiceLoss(softmax=True, soft_label=True) forward+backward on PyTorch CPU with as
# many threads as the machine has cores (benches/peer/monai_bench.py), alternated in
# three rounds; prints each round and the medians. The README's speed section is this
# script's output.
#
#   PYTHON=.venv/bin/python benches/vs_monai.sh [SHAPE]     (a Python with torch, monai)
#   SEGLOSS_UNROLL=0 benches/vs_monai.sh                    (the class-loop kernels)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SEGLOSS:-target/release/segloss}
py=${PYTHON:-.venv/bin/python}
shape=${1:-4x19x512x512}
[ -x "$bin" ] || { echo "no $bin: cargo build --release --workspace --all-targets" >&2; exit 2; }
"$py" -c 'import torch, monai' || { echo "$py: no torch / monai (see benches/peer/monai_bench.py)" >&2; exit 2; }
export NODEVICE_SELECT=1
threads=$(nproc)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "$(date -u +%F), $cpu, $threads cores; $("$bin" --version); shape $shape"
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
for round in 1 2 3; do
    "$bin" bench --backend vulkan --shapes "$shape" --runs 5 --json |
        sed "s/^{/{\"round\": $round, \"impl\": \"segloss\", /" >> "$rows"
    "$py" benches/peer/monai_bench.py --threads "$threads" --runs 5 --json --shape "$shape" |
        sed "s/^{/{\"round\": $round, \"impl\": \"monai\", /" >> "$rows"
done
python3 - "$rows" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
adapter = next(r["adapter"] for r in rows if r["impl"] == "segloss")
print(f"segloss on {adapter}; MONAI {rows[-1]['threads']} threads; Melem/s per round, median\n")
print("| target | segloss loss+grad | ceiling | % of ceiling | MONAI | segloss ÷ MONAI |")
print("|---|---:|---:|---:|---:|---:|")
for target in ("soft", "index"):
    seg = [r for r in rows if r["impl"] == "segloss" and r["target"] == target
           and r["op"] == "loss+grad" and r["api"] == "gpu-resident"]
    mon = [r for r in rows if r["impl"] == "monai" and r["target"] == target]
    s = [r["melem_per_s"] for r in seg]
    c = [r["ceiling_melem_per_s"] for r in seg]
    m = [r["melem_per_s"] for r in mon]
    pct = [a / b for a, b in zip(s, c)]
    ratio = [a / b for a, b in zip(s, m)]
    fmt = lambda v, f: " ".join(f.format(x) for x in v) + " → " + f.format(statistics.median(v))
    print(f"| {target} | {fmt(s, '{:.0f}')} | {fmt(c, '{:.0f}')} | {fmt([100 * p for p in pct], '{:.0f}%')} "
          f"| {fmt(m, '{:.0f}')} | {fmt(ratio, '{:.2f}×')} |")
    # Against each ceiling shape apart (the fastest is the one above).
    for shape in seg[0].get("ceilings", {}):
        v = [100 * a / r["ceilings"][shape] for a, r in zip(s, seg)]
        print(f"|   vs ceiling shape {shape} only | | {fmt([r['ceilings'][shape] for r in seg], '{:.0f}')} "
              f"| {fmt(v, '{:.0f}%')} | | |")
ce = [r for r in rows if r["impl"] == "segloss" and r["api"] == "gpu-resident"
      and r["op"].startswith("loss+grad CE+Dice")]
for target in ("soft", "index"):
    v = [r["melem_per_s"] for r in ce if r["target"] == target]
    c = [r["ceiling_melem_per_s"] for r in ce if r["target"] == target]
    if v:
        print(f"\nCE+Dice loss+grad, {target}: {statistics.median(v):.0f} Melem/s, "
              f"{100 * statistics.median([a / b for a, b in zip(v, c)]):.0f}% of the ceiling", end="")
print()
PY
