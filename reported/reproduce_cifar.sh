#!/usr/bin/env bash
# Table 1 runs of issue 18 (JPEG CIFAR-10): both extractors (100 epochs,
# checkpointed every epoch), then the 8 rows; rerun to resume.
set -u
cd "$(dirname "$0")/.."
R=${RUNS:-runs} D=${DATA:?set DATA to the directory holding cifar-10-batches-py}
mkdir -p "$R"
for a in arch1 arch2; do
  python -m experiments.pretrain --workdir=$R/extractor_${a}_100ep --data_dir=$D --arch=$a --num_classes=10 --augment --epochs=100 --seeds=0 >> $R/extractor_${a}_100ep.log 2>&1
  echo "$(date -u +%FT%TZ) extractor_$a rc=$?" >> $R/reproduce_cifar.done
done
for row in arch1:ir arch1:0.7,0.3 arch1:0.5,0.5 arch1:0.3,0.7 arch2:ir arch2:0.5,0.3,0.2 arch2:0.34,0.33,0.33 arch2:0.2,0.3,0.5; do
  a=${row%%:*} s=${row#*:} name=table1_${row//[:,]/_}_100ep
  python -m experiments.split_cifar10 --workdir=$R/$name --data_dir=$D --extractor_dir=$R/extractor_${a}_100ep --arch=$a --strategy=$s --seeds=0,1,2 >> $R/$name.log 2>&1
  echo "$(date -u +%FT%TZ) $name rc=$?" >> $R/reproduce_cifar.done
done
