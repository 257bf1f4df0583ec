#!/usr/bin/env bash
# `segloss evaluate` end to end (files in, JSON out) next to PyTorch CPU loops over the
# same files (benches/peer/eval_peers.py: a torch.bincount confusion matrix, torchmetrics
# MeanIoU and GeneralizedDiceScore, MONAI MeanIoU and DiceMetric), alternated in ROUNDS
# rounds in one run, on two datasets written by benches/peer/eval_data.py:
#   2d: 120 label maps of 512×512 uint8 (.npy), 19 classes, ignore 255;
#   3d: 20 volumes of 256×256×128 uint8 (.nii.gz by nibabel), 5 classes, ignore 255.
# Each peer's value is checked against the segloss figure it computes (|Δ| ≤ 1e-6, the
# peers count in float32) before its time is reported; a mismatch stops the script.
# segloss rows: the default (auto: a CPU adapter counts on the host), --cpu (the f64
# host path), --backend vulkan (counted by the shader on the Vulkan adapter); each with
# its peak RSS. Prints each round and the medians as a Markdown table (docs/metrics.md
# and the README carry its output).
#
#   PYTHON=/opt/oracle/bin/python benches/evaluate_vs_peers.sh [2d|3d|both]
#   ROUNDS=3 DATA=/tmp/segloss-eval-bench PEERS="torch tm-miou tm-gds monai-miou monai-dice"
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SEGLOSS:-target/release/segloss}
py=${PYTHON:-.venv/bin/python}
which=${1:-both}
rounds=${ROUNDS:-3}
data=${DATA:-${TMPDIR:-/tmp}/segloss-eval-bench}
peers=${PEERS:-torch tm-miou tm-gds monai-miou monai-dice}
[ -x "$bin" ] || { echo "no $bin: cargo build --release -p segloss-cli" >&2; exit 2; }
"$py" -c 'import torch, torchmetrics, monai, nibabel' ||
    { echo "$py: needs torch, torchmetrics, monai, nibabel" >&2; exit 2; }
export NODEVICE_SELECT=1
threads=$(nproc)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "$(date -u +%F), $cpu, $threads cores; $("$bin" --version); torch $("$py" -c 'import torch; print(torch.__version__)') ($threads threads)"
rows=$(mktemp)
trap 'rm -f "$rows" "$rows.rss"' EXIT
run_set() { # KIND CLASSES
    local kind=$1 c=$2 dir="$data/$1"
    [ -d "$dir/pred" ] || "$py" benches/peer/eval_data.py "$kind" "$dir" >&2
    for round in $(seq "$rounds"); do
        for mode in auto cpu device; do
            local flags=()
            case $mode in cpu) flags=(--cpu) ;; device) flags=(--backend vulkan) ;; esac
            local t0 t1 rss json=$dir/segloss-$mode.json
            t0=$(date +%s.%N)
            /usr/bin/time -o "$rows.rss" -f '%M' "$bin" evaluate "${flags[@]}" --pred "$dir/pred" \
                --target "$dir/target" --classes "$c" --ignore-index 255 --json "$json" \
                >/dev/null 2>/dev/null
            t1=$(date +%s.%N)
            rss=$(tail -n1 "$rows.rss")
            "$py" - "$json" "$kind" "$round" "$mode" "$t0" "$t1" "$rss" >> "$rows" <<'PY'
import json, sys
j, kind, rnd, mode, t0, t1, rss = sys.argv[1:]
d = json.load(open(j))
print(json.dumps({"set": kind, "round": int(rnd), "impl": "segloss " + mode, "s": float(t1) - float(t0),
                  "rss_mb": int(rss) / 1024, "miou_d": d["miou_d"], "miou_c": d["miou_c"], "mdice_c": d["mdice_c"]}))
PY
        done
        for p in $peers; do
            "$py" benches/peer/eval_peers.py "$p" "$dir/pred" "$dir/target" --classes "$c" \
                --threads "$threads" | sed "s/^{/{\"set\": \"$kind\", \"round\": $round, /" >> "$rows"
        done
    done
}
case $which in
    2d) run_set 2d 19 ;;
    3d) run_set 3d 5 ;;
    *) run_set 2d 19; run_set 3d 5 ;;
esac
"$py" - "$rows" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for kind in dict.fromkeys(r["set"] for r in rows):
    rs = [r for r in rows if r["set"] == kind]
    ref = next(r for r in rs if r["impl"] == "segloss cpu")
    for r in rs:  # every row computes the same figures
        if r["impl"].startswith("segloss"):
            bad = [k for k in ("miou_d", "miou_c", "mdice_c") if r[k] != ref[k]]
        else:
            bad = [] if abs(r["value"] - ref[r["segloss_key"]]) <= 1e-6 else [r["segloss_key"]]
        if bad:
            sys.exit(f"{kind} round {r['round']} {r['impl']}: {bad} differ from segloss --cpu")
    print(f"\n{kind}: {ref['miou_d']:.6f} mIoU (D), {ref['miou_c']:.6f} mIoU (C), {ref['mdice_c']:.6f} mDice (C); "
          "seconds per round → median")
    print("\n| how | seconds | × segloss default | checked | peak RSS |\n|---|---:|---:|---|---:|")
    auto = statistics.median(r["s"] for r in rs if r["impl"] == "segloss auto")
    for impl in dict.fromkeys(r["impl"] for r in rs):
        ts = [r["s"] for r in rs if r["impl"] == impl]
        m = statistics.median(ts)
        one = next(r for r in rs if r["impl"] == impl)
        check = "all three" if impl.startswith("segloss") else f"{one['segloss_key']} = {one['value']:.6f}"
        rss = f"{statistics.median(r['rss_mb'] for r in rs if r['impl'] == impl):.0f} MB" if "rss_mb" in one else ""
        print(f"| {impl} | {' '.join(f'{t:.2f}' for t in ts)} → **{m:.2f}** | {m / auto:.2f}× | {check} | {rss} |")
PY
