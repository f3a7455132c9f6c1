#!/usr/bin/env bash
# The GPU check behind the GPU figures of results/ (results/gpu/table3.*, results/speed.csv), as one
# script.
#   1. CapsNet, MAMS-ATSA and MAMS-ACSA, seed 0, alone on the GPU: the speed figures;
#   2. benchmarks/train_speed.py's table for capsnet on the GPU;
#   3. the Table-3 grid on the MAMS columns, every registered model, seeds 0-2, JOBS runs at once,
#      GPU utilisation sampled every 2 s;
#   4. what the table needs of each run folder (metrics.json, predictions.jsonl, train.log; no
#      checkpoints, not even the temporary ones of killed runs) packed into $OUT/runs.tar.gz.
# Runs from the repository root with the processed arrays already under data/processed (on a
# machine without internet, preprocess elsewhere and copy the arrays). GRID_SECONDS caps step 3 so
# that step 4 always runs; an unfinished grid resumes where it stopped.
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-$PWD/gpu_out}
JOBS=${JOBS:-12}
GRID_SECONDS=${GRID_SECONDS:-420}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
MODELS=${MODELS:+--models $MODELS}     # default: every registered model of Table 3
SET=${SET:-}                          # extra --set KEY=VALUE for every run (smoke tests of this script)
mkdir -p "$OUT"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  $PY -c "import torch, transformers, numpy, sklearn; print('torch', torch.__version__, 'cuda', torch.version.cuda, '| transformers', transformers.__version__, '| numpy', numpy.__version__, '| sklearn', sklearn.__version__)"
  nproc
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

echo "== 1. capsnet seed 0 alone"
for dataset in mams-atsa mams-acsa; do
  $PY main.py --mode train --model capsnet --dataset "$dataset" --device "$DEVICE" --seed 0 $SET 2>&1 | tail -3
done | tee "$OUT/capsnet_alone.txt"

echo "== 2. train_speed benchmark"
$PY benchmarks/train_speed.py --models capsnet,capsnet-bert --datasets mams-atsa --devices "$DEVICE" $SET 2>&1 | tee "$OUT/train_speed.txt"

echo "== 3. grid, MAMS columns, 3 seeds, $JOBS jobs"
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 2 > "$OUT/gpu_util.csv" 2>&1 &
SAMPLER=$!
start=$(date +%s)
timeout -s TERM "$GRID_SECONDS" $PY main.py --mode reproduce $MODELS --datasets mams-atsa,mams-acsa --seeds 3 \
  --jobs "$JOBS" --device "$DEVICE" $SET 2>&1 | tr '\r' '\n' | grep -v "^\s*$" | tail -40 | tee "$OUT/grid.txt"
echo "grid wall: $(( $(date +%s) - start )) s (jobs $JOBS)" | tee -a "$OUT/grid.txt"
kill $SAMPLER 2>/dev/null

echo "== 4. pack"
(cd runs && find . \( -name metrics.json -o -name predictions.jsonl -o -name train.log -o -name status.json \) \
  | tar -czf "$OUT/runs.tar.gz" -T -)
ls -la "$OUT"
