#!/bin/bash
# The GPU checks of issue 4, run on a lent GPU machine from the repo root:
#   bash benchmarks/gpu_session.sh OUT_DIR [PHASE]
# PHASE 1 (about 6 minutes): what each precision does on the card, one
# full-length ARCH1 run in float32, the ARCH1 IR iteration at each precision.
# PHASE 2 (about 6 minutes, on the same warm machine): Fashion-MNIST
# ir_frozen, 3 vmapped seeds, float32 and TF32 (FM_TF32, default the
# TF32_TF32_F32 dot algorithm; the accuracy effect of the
# precision), then the ARCH1 IR iteration at TF32, bfloat16 and float32.
# PHASE 3 (not run as such; phase 5 ran its TF32 part; about 9 minutes): whether one program per task
# phase (no lax.cond), an unrolled scan or command buffers for loops and
# conditionals make the ARCH1 iteration faster on the GPU; where its time
# goes (`benchmarks.profile`, float32 and TF32); then the ARCH1 and ARCH2
# benchmark of every strategy with 1 and 3 seeds (float32, TF32).
# PHASE 4 (not run as such; phase 5 ran it; about 4 minutes): a full ARCH1 run with 3 vmapped
# seeds (TF32).
# PHASE 5 (one call of about 9 minutes): the most useful parts of
# phases 3 and 4 for a single short lease, see below (run 2026-11-27).
# PHASE 6 (run 2026-11-27): bfloat16.
# PHASE 7 (default since 2026-11-27, tenth session; one call of about 9
# minutes): after the one-pass change (current rows and every replay slice
# share one pass through each network), the ARCH1 benchmark at TF32 and
# bfloat16, full ARCH1 runs (1 seed TF32, 1 seed bfloat16, 3 seeds TF32),
# then the profile.
# Needs .gpu/extractor_arch1 (an ARCH1 extractor checkpoint) and .gpu/fmnist
# (the four Fashion-MNIST .gz files) carried beside the tree (`run`'s carry:
# [".gpu"]). Timing runs need no well-trained extractor; on the CPU, in
# under a minute:
#   python -c "from tests import fake_data; fake_data.write_cifar10('/tmp/fake10', 50, 10)"
#   python -m experiments.pretrain --workdir=.gpu/extractor_arch1 --data_dir=/tmp/fake10 \
#     --arch=arch1 --epochs=1 --seeds=0 --set=data_label=fake
#   mkdir -p .gpu/fmnist && cp /usr/share/datasets/fashion-mnist/*.gz .gpu/fmnist/
#   echo .gpu/ >> .git/info/exclude Each step runs
# under its own time limit; after each one every log and result so far is
# packed into OUT_DIR/gpu_session.tgz. JAX's persistent compilation cache
# (with XLA's per-fusion autotuning cache) in /tmp/jax_cache is shared by the
# steps and phases. SMOKE=1 shrinks every step for a dry run on a CPU.
OUT=${1:?output dir}
PHASE=${2:-7}
LOGS=/tmp/gpu_session
mkdir -p "$OUT" "$LOGS" /tmp/jax_cache
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
export JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
export JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0
PY=${PY:-python3}
if [ -n "$SMOKE" ]; then
  BENCH="--archs=tiny --iters=2 --repeats=1"
  PER_CLASS="3 1"; CIFAR_EXTRA="--preset=tiny --iters_per_task=4 --pretrain_epochs=1"
  FM_EXTRA="--preset=tiny --iters_per_task=4"; EXTRACTOR=""; PROBE="--size=256"
  PROFILE="--arch=tiny --iters=2 --rows=64"; ARCH_RUNS=("tiny ir;0.3,0.7")
  $PY -c "from tests import fake_data; fake_data.write_cifar10('/tmp/fake100')"
else
  BENCH="--archs=arch1 --iters=50 --repeats=2"
  PER_CLASS="500 100"; CIFAR_EXTRA=""; FM_EXTRA=""; PROBE="--size=4096"
  PROFILE="--arch=arch1 --iters=50"; ARCH_RUNS=("arch1 ir;0.3,0.7" "arch2 ir;0.2,0.3,0.5")
  EXTRACTOR="--extractor_dir=$PWD/.gpu/extractor_arch1"
fi
START=$(date +%s)
DEADLINE=${DEADLINE:-540}
left() {  # left N: N, or the seconds left before DEADLINE if fewer
  local rest=$((DEADLINE - ($(date +%s) - START)))
  echo $((rest < $1 ? rest : $1))
}
CMDBUF=--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL
# The fastest benchmark record's mode: "TASK_PHASES UNROLL XLA_FLAGS|none".
PICK='
import json, sys
records = []
for path in sys.argv[1:]:
  try:
    records += json.load(open(path))
  except (OSError, ValueError):
    pass
if not records:
  print("auto 1 none")
else:
  best = min(records, key=lambda r: r["ms_per_iter"])
  print(str(best["task_phases"]).lower(), best["scan_unroll"],
        best.get("xla_flags") or "none")
'
step() {  # step NAME TIMEOUT_S COMMAND...: logs to LOGS/NAME.log, never aborts
  local name=$1 limit=$2; shift 2
  if [ "$limit" -lt 15 ]; then echo "=== $name: skipped, out of time"; return; fi
  echo "=== $name: $*"
  local start=$(date +%s.%N)
  timeout "$limit" "$@" > "$LOGS/$name.log" 2>&1
  local rc=$?
  echo "=== $name rc=$rc wall=$(python3 -c "import time; print(round(time.time() - $start, 1))")s"
  grep -v -i warn "$LOGS/$name.log" | tail -n 6
  tar czf "$OUT/gpu_session_$PHASE.tgz" -C "$LOGS" .
}
fake100() {  # CIFAR-100-shaped fake files in the real format
  $PY -c "import sys; from tests import fake_data; fake_data.write_cifar100('/tmp/fake100', *map(int, sys.argv[1:]))" $PER_CLASS
}
a1() {  # a1 NAME TIMEOUT_S FLAGS...: a full-length ARCH1 [0.3, 0.7] run on them
  local name=$1 limit=$2; shift 2
  step $name $limit $PY -m experiments.split_cifar100 --workdir=/tmp/w/$name --data_dir=/tmp/fake100 \
    $EXTRACTOR $CIFAR_EXTRA --strategy=0.3,0.7 --mfid=false --set=data_label=fake "$@"
  cp /tmp/w/$name/results.json "$LOGS/$name.json" 2>/dev/null
}
a1_tf32() {  # a1_tf32 NAME TIMEOUT_S SEEDS: a full ARCH1 run at TF32, loop mode $MODE
  a1 $1 $2 --seeds=$3 --checkpoint_every=0 --precision=tensorfloat32 $MODE
}
profile_tf32() {  # where an ARCH1 iteration's time goes at TF32, loop mode $MODE
  step profile_tf32 $(left 60) $PY -m benchmarks.profile $PROFILE \
    --precision=tensorfloat32 $MODE --out="$LOGS/profile_tf32.json"
}
fm() {  # fm SETUP PRECISION TIMEOUT_S
  step fm_$1_$2 $3 $PY -m experiments.fashion_mnist --workdir=/tmp/w/fm_$1_$2 \
    --data_dir=$PWD/.gpu/fmnist --setup=$1 --precision=$2 --seeds=0,1,2 \
    --checkpoint_every=0 $FM_EXTRA
  cp /tmp/w/fm_$1_$2/results.json "$LOGS/fm_$1_$2.json" 2>/dev/null
}
date; nvidia-smi -L 2>/dev/null; $PY -c 'import jax; print(jax.__version__, jax.devices())'
if [ "$PHASE" = 1 ]; then
  step probe 60 $PY -m benchmarks.precision_probe $PROBE --out="$LOGS/probe.json"
  fake100
  # Full length: 10 tasks x 5000 iterations, batch 256 + 256; checkpoints at
  # task ends only (--checkpoint_every=0).
  a1 a1_full_03_07 210 --seeds=0 --checkpoint_every=0
  step bench_precision 100 $PY -m benchmarks.run $BENCH --seeds=1 --flops=false \
    --precision=float32,tensorfloat32,BF16_BF16_F32 --out="$LOGS/bench_precision.json"
elif [ "$PHASE" = 2 ]; then
  fm ir_frozen float32 110
  fm ir_frozen ${FM_TF32:-TF32_TF32_F32} 90
  step bench_precision2 100 $PY -m benchmarks.run $BENCH --seeds=1 --flops=false --strategies=ir \
    --precision=tensorfloat32,BF16_BF16_F32,float32 --out="$LOGS/bench_precision2.json"
elif [ "$PHASE" = 3 ]; then
  # A conditional and the scan's loop condition may each cost a device-host
  # round trip per iteration, and break XLA's command buffers (CUDA graphs):
  # one program per task phase (no lax.cond), an unrolled scan, and command
  # buffers that take loops and conditionals.
  step bench_modes 120 $PY -m benchmarks.run $BENCH --seeds=1 --flops=false --strategies=ir \
    --precision=tensorfloat32,float32 --task_phases=false,true --scan_unroll=1,4 \
    --out="$LOGS/bench_modes.json"
  step bench_cmdbuf 90 env XLA_FLAGS=--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL \
    $PY -m benchmarks.run $BENCH --seeds=1 --flops=false --strategies=ir \
    --precision=tensorfloat32 --task_phases=false,true --out="$LOGS/bench_cmdbuf.json"
  for run in "float32 auto" "tensorfloat32 auto" "tensorfloat32 true"; do
    set -- $run
    step profile_$1_$2 70 $PY -m benchmarks.profile $PROFILE --precision=$1 --task_phases=$2 \
      --out="$LOGS/profile_$1_$2.json"
  done
  step bench_all 120 $PY -m benchmarks.run ${BENCH/--archs=arch1/--archs=arch1,arch2} --seeds=1,3 \
    --flops=false --precision=float32,tensorfloat32 --out="$LOGS/bench_all.json"
elif [ "$PHASE" = 6 ]; then
  # PHASE 6 (about 3 minutes): the accuracy effect of true bfloat16 matmuls
  # (Fashion-MNIST ir_frozen, 3 seeds), then a full ARCH1 run with them.
  fm ir_frozen BF16_BF16_F32 $(left 100)
  fake100
  a1 a1_full_1seed_bf16 $(left 90) --seeds=0 --checkpoint_every=0 \
    --precision=BF16_BF16_F32 --task_phases=true
elif [ "$PHASE" = 7 ]; then
  MODE="--task_phases=true"
  step bench_arch1 $(left 110) $PY -m benchmarks.run $BENCH --seeds=1,3 --flops=false \
    --strategies='ir;0.3,0.7' --precision=tensorfloat32,BF16_BF16_F32 $MODE \
    --out="$LOGS/bench_arch1.json"
  fake100
  a1_tf32 a1_full_1seed_tf32 $(left 100) 0
  a1 a1_full_1seed_bf16 $(left 90) --seeds=0 --checkpoint_every=0 \
    --precision=BF16_BF16_F32 $MODE
  a1_tf32 a1_full_3seeds_tf32 $(left 170) 0,1,2
  profile_tf32
elif [ "$PHASE" = 4 ]; then
  fake100
  a1 a1_full_3seeds_tf32 220 --seeds=0,1,2 --checkpoint_every=0 --precision=tensorfloat32
else
  # PHASE 5 (one call of at most DEADLINE seconds, default 540): phase 3's
  # loop-mode comparison at TF32, then full-length ARCH1 runs (1 seed, then
  # 3 vmapped seeds) in the fastest mode it found, then its profile, then
  # the ARCH1 + ARCH2 benchmark. Each step's limit is cut to the time left.
  step bench_modes $(left 100) $PY -m benchmarks.run $BENCH --seeds=1 --flops=false --strategies=ir \
    --precision=tensorfloat32 --task_phases=false,true --scan_unroll=1,4 \
    --out="$LOGS/bench_modes.json"
  step bench_cmdbuf $(left 70) env XLA_FLAGS=$CMDBUF \
    $PY -m benchmarks.run $BENCH --seeds=1 --flops=false --strategies=ir \
    --precision=tensorfloat32 --task_phases=false,true --out="$LOGS/bench_cmdbuf.json"
  set -- $($PY -c "$PICK" "$LOGS"/bench_modes.json "$LOGS"/bench_cmdbuf.json)
  echo "=== fastest mode: task_phases=$1 scan_unroll=$2 XLA_FLAGS=$3"
  [ "$3" = none ] && XF="" || XF="$3"
  MODE="--task_phases=$1 --scan_unroll=$2"
  fake100
  export XLA_FLAGS=$XF
  a1_tf32 a1_full_1seed_tf32 $(left 150) 0
  a1_tf32 a1_full_3seeds_tf32 $(left 190) 0,1,2
  profile_tf32
  # --strategies applies to every --archs, so one benchmark per architecture.
  for run in "${ARCH_RUNS[@]}"; do
    set -- $run
    step bench_$1 $(left 75) $PY -m benchmarks.run --archs=$1 ${BENCH#--archs=* } \
      --seeds=1,3 --flops=false --strategies="$2" --precision=tensorfloat32 $MODE \
      --out="$LOGS/bench_$1.json"
  done
fi
date; echo done
