#!/bin/bash
# Table 1 on a lent GPU (issue 18, item 6): both 100-epoch JPEG CIFAR-10
# extractors, then the 8 rows with 3 seeds each. From the repo root:
#   bash benchmarks/gpu_table1.sh OUT_DIR
# Needs the JPEG tarball and its converter carried beside the tree (`run`'s
# carry: [".gpu"]); prepare them here once:
#   mkdir -p .gpu && cp ../shared/data/cifar10_jpeg/{cifar10_jpeg.tar.gz,make_cifar10_batches.py} .gpu/
#   printf '.gpu/\ngpu_runs/\n' >> .git/info/exclude
# Run directories go to gpu_runs/ (ignored, not carried), so a second call on
# the still-warm machine resumes every step where the first stopped
# (pretraining after its last epoch, finished rows skipped). Everything that
# comes back is one file, OUT_DIR/table1.tar.gz (each row's results.json,
# results.md and logs; each extractor's meta.json and variables), plus
# OUT_DIR/steps.txt and OUT_DIR/gpu.txt. The two extractors train side by
# side, then the rows four at a time, each process limited to a share of the
# GPU's memory. The script starts no step after DEADLINE seconds (default
# 500). SMOKE=1 runs the same steps on fake data with the tiny preset, for a
# dry run on a CPU.
OUT=${1:?output dir}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
export JAX_COMPILATION_CACHE_DIR=$PWD/gpu_runs/jax_cache
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.2
PY=${PY:-python3}
R=$PWD/gpu_runs
DATA=$R/cifar
EPOCHS=100 PRE="" ROW=""
mkdir -p "$R"
START=$(date +%s)
DEADLINE=${DEADLINE:-500}
if [ -n "$SMOKE" ]; then
  R=$PWD/gpu_runs/smoke DATA=$R/cifar EPOCHS=2
  PRE="--preset=tiny" ROW="--preset=tiny --iters_per_task=4 --set=data_label=fake"
  mkdir -p "$R"
  [ -d "$DATA" ] || $PY -c "from tests import fake_data; fake_data.write_cifar10('$DATA', per_class_train=10, per_class_test=4)"
elif [ ! -f "$DATA/cifar-10-batches-py/test_batch" ]; then
  $PY .gpu/make_cifar10_batches.py "$DATA" > "$OUT/data.log" 2>&1 || { cat "$OUT/data.log"; exit 1; }
fi
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/gpu.txt" 2>&1

late() { (( $(date +%s) - START + 30 > DEADLINE )); }

pretrain() {  # pretrain ARCH
  local a=$1 t0=$(date +%s)
  if late; then echo "skipped extractor_$a (deadline)" >> "$OUT/steps.txt"; return; fi
  timeout $(( DEADLINE - ($(date +%s) - START) )) $PY -m experiments.pretrain \
    --workdir=$R/extractor_${a}_100ep --data_dir=$DATA --arch=$a \
    --num_classes=10 --augment --epochs=$EPOCHS --seeds=0 $PRE \
    >> $R/extractor_${a}_100ep.log 2>&1
  echo "extractor_$a rc=$? $(( $(date +%s) - t0 ))s" >> "$OUT/steps.txt"
}

row() {  # row ARCH STRATEGY
  local a=$1 s=$2 name=table1_$1_${2//,/_}_100ep t0=$(date +%s)
  if [ ! -f $R/extractor_${a}_100ep/meta.json ]; then
    echo "skipped $name (no extractor)" >> "$OUT/steps.txt"; return; fi
  if late; then echo "skipped $name (deadline)" >> "$OUT/steps.txt"; return; fi
  timeout $(( DEADLINE - ($(date +%s) - START) )) $PY -m experiments.split_cifar10 \
    --workdir=$R/$name --data_dir=$DATA --extractor_dir=$R/extractor_${a}_100ep \
    --arch=$a --strategy=$s --seeds=0,1,2 $ROW >> $R/$name.log 2>&1
  echo "$name rc=$? $(( $(date +%s) - t0 ))s" >> "$OUT/steps.txt"
}

pretrain arch1 & pretrain arch2 & wait
row arch1 ir & row arch1 0.7,0.3 & row arch1 0.5,0.5 & row arch1 0.3,0.7 & wait
row arch2 ir & row arch2 0.5,0.3,0.2 & row arch2 0.34,0.33,0.33 & row arch2 0.2,0.3,0.5 & wait

# One archive back: what each finished step wrote that a record needs.
(cd "$R" && tar czf "$OUT/table1.tar.gz" --ignore-failed-read \
  $(ls -d extractor_*_100ep/meta.json extractor_*_100ep/variables \
        table1_*_100ep/results.json table1_*_100ep/results.md \
        table1_*_100ep/logs ./*.log 2>/dev/null))
cat "$OUT/steps.txt"
