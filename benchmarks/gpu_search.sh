#!/bin/bash
# Issue 29's strategy searches on a lent GPU: (a) exact Fashion-MNIST,
# `ir_frozen`, the 3 x 50 network, grid 0.25 + the named rules, 3 seeds;
# (b) Table 1 ARCH2 on the committed 100-epoch extractor, grid 0.1 + the
# rules, 3 seeds (ARCH1's runs on the 2-core CPU). From the repo root:
#   bash benchmarks/gpu_search.sh OUT_DIR [fmnist|table1_arch2|both]
# Needs, carried beside the tree (`run`'s carry: [".gpu"]), prepared once:
#   mkdir -p .gpu/fmnist && cp /usr/share/datasets/fashion-mnist/*.gz .gpu/fmnist/
#   cp ../shared/data/cifar10_jpeg/{cifar10_jpeg.tar.gz,make_cifar10_batches.py} .gpu/
# (.gpu/ and gpu_runs/ are in .gitignore.)
# Each search runs in gpu_runs/search_<name> (ignored, not carried), so a
# second call on the still-warm machine resumes it. IR runs alone first (its
# task 1 is then every strategy's: WORKDIR/first_task), then the other
# strategies in P processes side by side (`--shard=i/P`, each limited to a
# share of the GPU's memory), then one call without --shard ranks them all.
# What comes back: OUT_DIR/search_<name>.tar.gz (results.md, results.json,
# figures, each strategy's results.json, results.md and logs), steps.txt
# and gpu.txt. No step starts after DEADLINE seconds (default 540). SMOKE=1
# runs the same steps on fake data with the tiny preset, for a dry run on a
# CPU (2-core VM, beside a Table 1 run: 3.5 min for fmnist, 4 for
# table1_arch2's 66 strategies, P=2).
OUT=${1:?output dir}
WHICH=${2:-both}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
export JAX_COMPILATION_CACHE_DIR=$PWD/gpu_runs/jax_cache
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
export XLA_PYTHON_CLIENT_MEM_FRACTION=${MEM_FRACTION:-0.12}
PY=${PY:-python3}
P=${P:-6}
R=$PWD/gpu_runs EXTRA="" FMNIST=$PWD/.gpu/fmnist CIFAR=$R/cifar
if [ -n "$SMOKE" ]; then
  R=$PWD/gpu_runs/smoke FMNIST=$PWD/gpu_runs/smoke/fmnist CIFAR=$PWD/gpu_runs/smoke/cifar
  EXTRA="--preset=tiny --iters_per_task=4 --set=data_label=fake --named=false"
fi
mkdir -p "$R"
START=$(date +%s)
DEADLINE=${DEADLINE:-540}
if [ -n "$SMOKE" ]; then
  [ -d "$FMNIST" ] || $PY -c "from tests import fake_data; fake_data.write_fashion_mnist('$FMNIST')"
  [ -d "$CIFAR" ] || $PY -c "from tests import fake_data; fake_data.write_cifar10('$CIFAR', per_class_train=10, per_class_test=4)"
elif [ "$WHICH" != fmnist ] && [ ! -f "$CIFAR/cifar-10-batches-py/test_batch" ]; then
  $PY .gpu/make_cifar10_batches.py "$CIFAR" > "$OUT/data.log" 2>&1 || { cat "$OUT/data.log"; exit 1; }
fi
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/gpu.txt" 2>&1

step() {  # step NAME LABEL FLAGS...: one experiments.search call, time-limited
  local name=$1 label=$2; shift 2
  local t0=$(date +%s) left=$(( DEADLINE - ($(date +%s) - START) ))
  if (( left < 30 )); then echo "skipped $name $label (deadline)" >> "$OUT/steps.txt"; return; fi
  timeout $left $PY -m experiments.search --workdir=$R/search_$name "$@" \
    $EXTRA >> "$R/search_$name.$label.log" 2>&1
  echo "$name $label rc=$? $(( $(date +%s) - t0 ))s" >> "$OUT/steps.txt"
}

search() {  # search NAME IR_ID FLAGS...
  local name=$1 ir=$2; shift 2
  step $name ir --rows=$ir "$@"
  for i in $(seq 0 $(( P - 1 ))); do step $name shard$i --shard=$i/$P "$@" & done
  wait
  step $name rank "$@"
  (cd "$R/search_$name" && tar czf "$OUT/search_$name.tar.gz" --ignore-failed-read \
    $(ls -d results.md results.json figures */results.json */results.md */logs \
          ../search_$name.*.log 2>/dev/null))
}

if [ "$WHICH" != table1_arch2 ]; then
  search fmnist fig5_fmnist_ir --protocol=fig5 --grid=0.25 --seeds=0,1,2 \
    --data_dir=$FMNIST
fi
if [ "$WHICH" != fmnist ]; then
  EXTRACTOR="--extractor_dirs=reported/extractors/arch2_cifar10_100ep"
  [ -n "$SMOKE" ] && EXTRACTOR=""
  search table1_arch2 table1_arch2_ir --protocol=table1 --arch=arch2 \
    --grid=${GRID:-0.1} --seeds=0,1,2 --data_dir=$CIFAR $EXTRACTOR
fi
cat "$OUT/steps.txt"
