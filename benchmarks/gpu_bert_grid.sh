#!/usr/bin/env bash
# The BERT-family rows of Table 3 on one GPU, as one script: several runs share the GPU.
#   1. MAMS-ATSA and MAMS-ACSA: BERT, CapsNet-BERT and CapsNet-BERT-DR, seeds 0..MAMS_SEEDS-1,
#      MAMS_JOBS runs at once;
#   2. beside it, the other four columns (MAMS-small and SemEval-14 Restaurant, ATSA and ACSA),
#      seeds 0..SMALL_SEEDS-1, SMALL_JOBS runs at once;
#   3. GPU utilisation sampled every 2 s;
#   4. the finished runs published there (python main.py --mode publish, which writes
#      results/predictions/ and the tables), the new published files packed into
#      $OUT/published.tar.gz, and each run's metrics.json, predictions.jsonl and train.log (no
#      checkpoints) into $OUT/runs.tar.gz, with the logs.
# Runs from the repository root with the processed arrays (and their BERT inputs) already under
# data/processed and the raw XML under data/raw (a machine without internet cannot build them:
# preprocess elsewhere and copy data/). GRID_SECONDS caps steps 1-2 so that step 4 always runs; the
# runs a cap stops are left unfinished and a rerun of the grid trains them again.
# Afterwards, in the repository: tar -xzf published.tar.gz, then python main.py --mode results (or
# publish) renders the tables with them.
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-$PWD/gpu_out}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
MODELS=${MODELS:-bert,capsnet-bert,capsnet-bert-dr}
MAMS=${MAMS_DATASETS:-mams-atsa,mams-acsa}
SMALL=${SMALL_DATASETS:-mams-small-atsa,mams-small-acsa,restaurant-atsa,restaurant-acsa}
MAMS_SEEDS=${MAMS_SEEDS:-5}
MAMS_JOBS=${MAMS_JOBS:-15}
SMALL_SEEDS=${SMALL_SEEDS:-1}
SMALL_JOBS=${SMALL_JOBS:-4}
GRID_SECONDS=${GRID_SECONDS:-420}
SET=${SET:-}                 # extra --set KEY=VALUE for every run (smoke tests of this script)
mkdir -p "$OUT"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
  $PY -c "import torch, transformers, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda, '| transformers', transformers.__version__, '| numpy', numpy.__version__)"
  echo "cpus $(nproc)"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 2 > "$OUT/gpu_util.csv" 2>/dev/null &
SAMPLER=$!
start=$(date +%s)
grid() {   # grid NAME DATASETS SEEDS JOBS
  timeout -s TERM "$GRID_SECONDS" $PY main.py --mode reproduce --models "$MODELS" --datasets "$2" --seeds "$3" \
    --jobs "$4" --device "$DEVICE" --results "runs/results-$1" --set train.num_threads=1 $SET 2>&1 \
    | tr '\r' '\n' | grep -v "^\s*$" > "$OUT/grid-$1.txt"
  echo "grid $1: $(( $(date +%s) - start )) s" | tee -a "$OUT/grid-$1.txt"
}
grid mams "$MAMS" "$MAMS_SEEDS" "$MAMS_JOBS" &
P1=$!
grid small "$SMALL" "$SMALL_SEEDS" "$SMALL_JOBS" &
P2=$!
wait $P1 $P2
kill $SAMPLER 2>/dev/null
tail -n 3 "$OUT"/grid-*.txt

touch "$OUT/.before_publish"
$PY main.py --mode publish --models "$MODELS" 2>&1 | tail -20 > "$OUT/publish.txt"
cat "$OUT/publish.txt"
find results/predictions -name '*.parquet' -newer "$OUT/.before_publish" | tar -czf "$OUT/published.tar.gz" -T -
rm -f "$OUT/.before_publish"
([ -d runs ] && cd runs && find . -path './results-*' -prune -o \
  \( -name metrics.json -o -name predictions.jsonl -o -name train.log \) -print \
  | tar -czf "$OUT/runs.tar.gz" -T -)
ls -la "$OUT"
