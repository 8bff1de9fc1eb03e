#!/bin/bash
# The GPU checks of issue 4, run once on a lent GPU machine from the repo root:
#   bash benchmarks/gpu_session.sh OUT_DIR
# Needs .gpu/extractor_arch1 (an ARCH1 extractor checkpoint) and .gpu/fmnist
# (the four Fashion-MNIST .gz files) carried beside the tree. Steps run in
# order of priority, each under its own time limit; after each one every log
# and result so far is packed into OUT_DIR/gpu_session.tgz. SMOKE=1 shrinks
# every step for a dry run on a CPU.
OUT=${1:?output dir}
LOGS=/tmp/gpu_session
mkdir -p "$OUT" "$LOGS"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
PY=${PY:-python3}
if [ -n "$SMOKE" ]; then
  BENCH="--archs=tiny --iters=2 --repeats=1"
  PER_CLASS="3 1"; CIFAR_EXTRA="--preset=tiny --iters_per_task=4 --pretrain_epochs=1"
  FM_EXTRA="--preset=tiny --iters_per_task=4"; EXTRACTOR=""
  $PY -c "from tests import fake_data; fake_data.write_cifar10('/tmp/fake100')"
else
  BENCH="--archs=arch1 --iters=50 --repeats=2"
  PER_CLASS="500 100"; CIFAR_EXTRA=""; FM_EXTRA=""
  EXTRACTOR="--extractor_dir=$PWD/.gpu/extractor_arch1"
fi
step() {  # step NAME TIMEOUT_S COMMAND...: logs to LOGS/NAME.log, never aborts
  local name=$1 limit=$2; shift 2
  echo "=== $name: $*"
  local start=$(date +%s.%N)
  timeout "$limit" "$@" > "$LOGS/$name.log" 2>&1
  local rc=$?
  echo "=== $name rc=$rc wall=$(python3 -c "import time; print(round(time.time() - $start, 1))")s"
  grep -v -i warn "$LOGS/$name.log" | tail -n 5
  tar czf "$OUT/gpu_session.tgz" -C "$LOGS" .
}
fm() {  # fm SETUP PRECISION TIMEOUT_S
  step fm_$1_$2 $3 $PY -m experiments.fashion_mnist --workdir=/tmp/w/fm_$1_$2 \
    --data_dir=$PWD/.gpu/fmnist --setup=$1 --precision=$2 --seeds=0,1,2 $FM_EXTRA
  cp /tmp/w/fm_$1_$2/results.json "$LOGS/fm_$1_$2.json" 2>/dev/null
}
nvidia-smi -L 2>/dev/null; $PY -c 'import jax; print(jax.__version__, jax.devices())'
# Order: what is still unmeasured first (the 2026-11-26 session got ARCH1 IR
# ms/iter and the bfloat16 Fashion-MNIST run; the full ARCH1 run and the
# float32 Fashion-MNIST run were cut by their limits).
$PY -c "import sys; from tests import fake_data; fake_data.write_cifar100('/tmp/fake100', *map(int, sys.argv[1:]))" $PER_CLASS
step a1_full_03_07 200 $PY -m experiments.split_cifar100 --workdir=/tmp/w/a1 --data_dir=/tmp/fake100 \
  $EXTRACTOR $CIFAR_EXTRA --strategy=0.3,0.7 --seeds=0 --mfid=false --data_label=fake
cp /tmp/w/a1/results.json "$LOGS/a1_full_03_07.json" 2>/dev/null
fm ir_frozen float32 110
step bench_f32 140 $PY -m benchmarks.run $BENCH --json --out="$LOGS/bench_f32.json"
echo done
