#!/usr/bin/env bash
# Table 1 of issue 18 (JPEG CIFAR-10): `experiments.reproduce table1` runs
# both 100-epoch extractors (checkpointed every epoch) and the 8 rows x 3
# seeds in $RUNS/table1, then writes $RUNS/table1/results.md; rerun to resume.
# Each row's results.json is then the record reported/table1_<row>_100ep.json.
set -u
cd "$(dirname "$0")/.."
R=${RUNS:-runs} D=${DATA:?set DATA to the directory holding cifar-10-batches-py}
mkdir -p "$R/table1"
python -m experiments.reproduce table1 --workdir=$R/table1 --data_dir=$D >> $R/table1.log 2>&1
echo "$(date -u +%FT%TZ) table1 rc=$?" >> $R/reproduce_cifar.done
