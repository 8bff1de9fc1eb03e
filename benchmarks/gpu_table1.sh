#!/bin/bash
# Table 1 on a lent GPU (issue 18, item 6): both 100-epoch JPEG CIFAR-10
# extractors, then the 8 rows and the two lower bounds (no replay) with 3
# seeds each. From the repo root:
#   bash benchmarks/gpu_table1.sh OUT_DIR
# Needs the JPEG tarball and its converter carried beside the tree (`run`'s
# carry: [".gpu"]); prepare them here once:
#   mkdir -p .gpu && cp ../shared/data/cifar10_jpeg/{cifar10_jpeg.tar.gz,make_cifar10_batches.py} .gpu/
#   printf '.gpu/\ngpu_runs/\n' >> .git/info/exclude
# Runs `python -m experiments.reproduce table1` (the rows, their shared
# extractors and WORKDIR/results.md with the paper's numbers) in
# gpu_runs/table1 (ignored, not carried), so a second call on the still-warm
# machine resumes every row where the first stopped (pretraining after its
# last epoch, finished rows skipped). One process per row, each limited to a
# share of the GPU's memory: first one row per architecture (each pretrains
# its architecture's extractor), then the other six side by side, then one
# call over all rows that only rewrites results.md. What comes back is one
# file, OUT_DIR/table1.tar.gz (results.md and results.json of the table;
# each row's results.json, results.md and logs; each extractor's meta.json
# and variables; the logs), plus OUT_DIR/steps.txt and OUT_DIR/gpu.txt. No
# step starts after DEADLINE seconds (default 500). SMOKE=1 runs the same
# steps on fake data with the tiny preset, for a dry run on a CPU.
OUT=${1:?output dir}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
export JAX_COMPILATION_CACHE_DIR=$PWD/gpu_runs/jax_cache
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.2
PY=${PY:-python3}
R=$PWD/gpu_runs EXTRA=""
[ -n "$SMOKE" ] && R=$PWD/gpu_runs/smoke EXTRA="--preset=tiny --iters_per_task=4 --set=data_label=fake"
DATA=$R/cifar W=$R/table1
mkdir -p "$W"
START=$(date +%s)
DEADLINE=${DEADLINE:-500}
if [ -n "$SMOKE" ]; then
  [ -d "$DATA" ] || $PY -c "from tests import fake_data; fake_data.write_cifar10('$DATA', per_class_train=10, per_class_test=4)"
elif [ ! -f "$DATA/cifar-10-batches-py/test_batch" ]; then
  $PY .gpu/make_cifar10_batches.py "$DATA" > "$OUT/data.log" 2>&1 || { cat "$OUT/data.log"; exit 1; }
fi
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/gpu.txt" 2>&1

rows() {  # rows ID[,ID...]: experiments.reproduce table1 over those rows
  local t0=$(date +%s) left=$(( DEADLINE - ($(date +%s) - START) ))
  if (( left < 30 )); then echo "skipped ${1:-all} (deadline)" >> "$OUT/steps.txt"; return; fi
  timeout $left $PY -m experiments.reproduce table1 --workdir=$W \
    --data_dir=$DATA --rows=$1 $EXTRA >> $W/${1:-all}.log 2>&1
  echo "${1:-all} rc=$? $(( $(date +%s) - t0 ))s" >> "$OUT/steps.txt"
}

rows table1_arch1_ir & rows table1_arch2_ir & wait
for id in table1_arch1_0.7_0.3 table1_arch1_0.5_0.5 table1_arch1_0.3_0.7 \
          table1_arch2_0.5_0.3_0.2 table1_arch2_0.34_0.33_0.33 table1_arch2_0.2_0.3_0.5 \
          table1_arch1_none table1_arch2_none; do
  rows $id &
done
wait
rows ""

# One archive back: what each finished step wrote that a record needs.
(cd "$W" && tar czf "$OUT/table1.tar.gz" --ignore-failed-read \
  $(ls -d results.md results.json extractor_*/meta.json extractor_*/variables \
        table1_*/results.json table1_*/results.md table1_*/logs ./*.log 2>/dev/null))
cat "$OUT/steps.txt"
