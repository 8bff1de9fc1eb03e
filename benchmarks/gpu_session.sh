#!/bin/bash
# Issue 18's Figure 5 runs on a lent GPU, then the benchmark after the
# reference VAE. Every Figure 5 record now exists from CPU runs (reported/),
# and so does Table 1 (2026-12-06); what a lent GPU should run first is the
# strategy searches: benchmarks/gpu_search.sh.
# From the repo root:
#   bash benchmarks/gpu_session.sh OUT_DIR
# Needs .gpu/fmnist (the four Fashion-MNIST .gz files) carried beside the
# tree (`run`'s carry: [".gpu"]):
#   mkdir -p .gpu/fmnist && cp /usr/share/datasets/fashion-mnist/*.gz .gpu/fmnist/
#   echo .gpu/ >> .git/info/exclude
# Each run's results.json, results.md and logs/ go to OUT_DIR/<record>/, its
# progress to OUT_DIR/<record>.log; checkpoints stay in /tmp (only task
# ends). Every step has its own time limit and the whole script stops
# starting steps after DEADLINE seconds (default 540). JAX's persistent
# compilation cache in /tmp/jax_cache is shared by the steps. SMOKE=1
# shrinks every step for a dry run on a CPU.
OUT=${1:?output dir}
mkdir -p "$OUT" /tmp/jax_cache /tmp/gpu_runs
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
export JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
PY=${PY:-python3}
DATA=$PWD/.gpu/fmnist
EXTRA="--checkpoint_every=0"
BENCH="--archs=arch1,arch2 --iters=50 --repeats=2 --seeds=1"
if [ -n "$SMOKE" ]; then
  DATA=/tmp/smoke_fmnist
  $PY -c "from tests import fake_data; fake_data.write_fashion_mnist('$DATA')"
  EXTRA="$EXTRA --preset=tiny --iters_per_task=4 --set=data_label=fake"
  BENCH="--archs=tiny --iters=2 --repeats=1 --seeds=1 --flops=false"
fi
START=$(date +%s)
DEADLINE=${DEADLINE:-540}

fm() {  # fm RECORD LIMIT_S FLAGS...
  local name=$1 limit=$2; shift 2
  if (( $(date +%s) - START + 30 > DEADLINE )); then
    echo "skipped $name (deadline)" >> "$OUT/steps.txt"; return; fi
  local t0=$(date +%s)
  timeout "$limit" $PY -m experiments.fashion_mnist --workdir=/tmp/gpu_runs/$name \
    --data_dir="$DATA" "$@" $EXTRA > "$OUT/$name.log" 2>&1
  local rc=$?
  mkdir -p "$OUT/$name"
  cp -r /tmp/gpu_runs/$name/results.* /tmp/gpu_runs/$name/logs "$OUT/$name/" 2>/dev/null
  echo "$name rc=$rc $(( $(date +%s) - t0 ))s" >> "$OUT/steps.txt"
}

nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
fm fig5_gr_authors_command 150 --setup=gr --preset=authors --seeds=0
fm fig5_plr_ir_all 150 --setup=ir_frozen --strategy=ir --seeds=0,1,2
for s in 0.2,0.3,0.5 0.5,0.3,0.2; do
  for m in all only_last_layer; do
    fm fig5_plr_${s//,/_}_$m 150 --setup=ir_frozen --strategy=$s --recon_levels=$m --seeds=0,1,2
  done
done
fm fig5_ir_frozen_authors_setup 150 --setup=ir_frozen --preset=authors --seeds=0,1,2
fm fig5_gr_frozen_authors_setup 120 --setup=gr_frozen --preset=authors --seeds=0
fm fig5_ir_naive_authors_setup 120 --setup=ir_naive --preset=authors --seeds=0
fm fig5_gr_authors_setup 200 --setup=gr --preset=authors --seeds=0,1,2
if (( $(date +%s) - START + 60 < DEADLINE )); then
  timeout 120 $PY -m benchmarks.run $BENCH --precision=float32,tensorfloat32 \
    --json --out="$OUT/bench.json" > "$OUT/bench.log" 2>&1
  echo "bench rc=$?" >> "$OUT/steps.txt"
fi
cat "$OUT/steps.txt"
