#!/usr/bin/env bash
# The GPU speed check as one script: the CUDA tests, then CapsNet (paper
# design, 20 epochs) on MAMS-ATSA and MAMS-ACSA: milliseconds per step for each way a step can run
# (benchmarks/gpu_step.py) and where a step's GPU time goes (benchmarks/gpu_kernels.py), seeds 0-2
# with training steps replayed from CUDA graphs (the default), seed 0 again with other settings
# (VARIANTS) and with graphs off (eager steps), benchmarks/train_speed.py's table, and one table of
# the full runs' figures. The variables below choose the parts.
# Runs from the repository root with the processed arrays under data/processed (on a machine
# without internet, preprocess elsewhere and copy them). Writes its logs and table under $OUT.
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-$PWD/gpu_out}
PY=${PYTHON:-python3}
SEEDS=${SEEDS:-"0 1 2"}
EAGER=${EAGER:-"mams-atsa mams-acsa"}   # datasets of the eager comparison runs
RUNS=${RUNS:-runs_gpu_speed}
DEVICE=${DEVICE:-cuda}
SET=${SET:-}                 # extra --set KEY=VALUE for every run (a smoke test of this script on a CPU)
STEP_VARIANTS=${STEP_VARIANTS:-}   # gpu_step.py --only: the BiGRU variants timed in 2 (default: all)
KERNELS=${KERNELS:-1}        # 1: benchmarks/gpu_kernels.py (where a step's GPU time goes)
TRAIN_SPEED=${TRAIN_SPEED:-1}  # 1: benchmarks/train_speed.py's table
VARIANTS=${VARIANTS:-}       # "NAME=KEY=VALUE ...": one more MAMS-ATSA seed-0 run per entry, with that --set
BASELINES=${BASELINES:-}     # "lstm ian ...": each of these models too, MAMS-ATSA seed 0, 20 epochs
SPEED_MODELS=${SPEED_MODELS:-capsnet}   # benchmarks/train_speed.py's models (5)
SPEED_DATASETS=${SPEED_DATASETS:-"mams-atsa mams-acsa"}   # and datasets
COMPARE=${COMPARE:-}         # a commit for train_speed.py's side-by-side columns (--compare-commit)
mkdir -p "$OUT"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"
  git rev-parse --short HEAD 2>/dev/null || echo "commit: not a git checkout"
} 2>&1 | tee "$OUT/env.txt"

echo "== 1. CUDA tests"
$PY -m pytest -q -p no:cacheprovider tests/test_cuda_graphs.py tests/test_kernels.py 2>&1 | tail -25 | tee "$OUT/tests.txt"

echo "== 2. milliseconds per training step, each way a step can run (benchmarks/gpu_step.py)"
for dataset in mams-atsa mams-acsa; do
  $PY benchmarks/gpu_step.py --dataset "$dataset" --only "$STEP_VARIANTS" 2>&1 | grep -v Warning
done | tee "$OUT/gpu_step.txt"

if [ "$KERNELS" = 1 ]; then
  echo "== 2b. where a step's GPU time goes (benchmarks/gpu_kernels.py)"
  for dataset in mams-atsa mams-acsa; do
    $PY benchmarks/gpu_kernels.py --dataset "$dataset" 2>&1 | grep -v Warning
  done > "$OUT/gpu_kernels.txt" 2>&1
  grep -A14 "kernels a step" "$OUT/gpu_kernels.txt"
fi

run() {   # dataset seed run_name [--set ...]
  local dataset=$1 seed=$2 name=$3; shift 3
  local start=$(date +%s%N)
  $PY main.py --mode train --model "${MODEL:-capsnet}" --dataset "$dataset" --device "$DEVICE" --seed "$seed" \
    --set "paths.runs=$RUNS" --set "run_name=$name" --set train.tensorboard=false $SET "$@" 2>&1 \
    | grep -E "CUDA graphs|best:|Error|error" | tail -3
  echo "$dataset $name seed $seed: process $(( ($(date +%s%N) - start) / 1000000 )) ms"
}

echo "== 3. capsnet, 20 epochs, CUDA graphs"
for dataset in mams-atsa mams-acsa; do
  for seed in $SEEDS; do run "$dataset" "$seed" capsnet-graphs; done
done 2>&1 | tee "$OUT/graphs.txt"

echo "== 3b. capsnet, 20 epochs, MAMS-ATSA seed 0, other settings (VARIANTS)"
for entry in $VARIANTS; do
  run mams-atsa 0 "capsnet-${entry%%=*}" --set "${entry#*=}"
done 2>&1 | tee "$OUT/variants.txt"

echo "== 3c. other models, 20 epochs, MAMS-ATSA seed 0 (BASELINES)"
for model in $BASELINES; do
  MODEL=$model run mams-atsa 0 "$model-graphs"
done 2>&1 | tee "$OUT/baselines.txt"

echo "== 4. capsnet, 20 epochs, eager steps (train.cuda_graphs=false), seed 0"
for dataset in $EAGER; do
  run "$dataset" 0 capsnet-eager --set train.cuda_graphs=false
done 2>&1 | tee "$OUT/eager.txt"

if [ "$TRAIN_SPEED" = 1 ]; then
  echo "== 5. benchmarks/train_speed.py"
  # both trees read this tree's processed arrays, so neither preprocesses (that needs the raw data and vectors)
  $PY benchmarks/train_speed.py --models "${SPEED_MODELS// /,}" --datasets "${SPEED_DATASETS// /,}" --devices "$DEVICE" \
    --epochs 3 ${COMPARE:+--compare-commit "$COMPARE"} --set "paths.processed=$PWD/data/processed" $SET \
    2>&1 | grep -v Warning | tee "$OUT/train_speed.txt"
fi

echo "== 6. table of the 20-epoch runs"
$PY - "$RUNS" <<'EOF' 2>&1 | tee "$OUT/table.txt"
import json, statistics, sys
from pathlib import Path
rows = []
for path in sorted(Path(sys.argv[1]).glob("*/*/seed*/metrics.json")):
    m = json.loads(path.read_text())
    t = m["timing"]
    g = t.get("cuda_graphs") or {}
    graphs = f"{g['training']} + {g['validation']} ({g['record_seconds']} s)" if g else "none"
    rows.append((m["dataset"], m["run_name"], m["seed"], m["test"]["accuracy"], m["test"]["macro_f1"],
                 t["wall_seconds"], t["train_seconds"], graphs, t["train_samples_per_second"],
                 t["peak_memory_mib"], m["best_epoch"]))
print("| dataset | run | seed | test acc | test F1 | fit wall s | train s | graphs: train + val (recording) "
      "| samples/s | peak MiB | best epoch |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(str(x) for x in r) + " |")
for dataset in sorted({r[0] for r in rows}):
    for name in sorted({r[1] for r in rows}):
        sel = [r for r in rows if r[0] == dataset and r[1] == name]
        if len(sel) > 1:
            acc, wall = [r[3] for r in sel], [r[5] for r in sel]
            print(f"{dataset} {name}: acc {statistics.mean(acc):.2f} ± {statistics.stdev(acc):.2f}, "
                  f"fit wall {min(wall)}-{max(wall)} s over seeds {[r[2] for r in sel]}")
EOF
