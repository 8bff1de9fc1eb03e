#!/usr/bin/env bash
# Table 1 (issue 27) on one machine, resumable: both 100-epoch extractors,
# then the rows on our extractors (reported/table1_<row>_100ep.json) and the
# four diagnosis rows on the authors' imported extractor
# (reported/table1_<row>_bir.json). Each step resumes from its checkpoints;
# finished steps are skipped. Run directories live outside the checkout:
#   DATA=~/plr_runs/data AUTHORS=.../C3-5x16-bn-cifar10_pretrained \
#     nohup bash reported/reproduce_cifar.sh >> ~/plr_runs/logs/table1.log 2>&1 &
# AUTHORS: the authors' store/models/C3-5x16-bn-cifar10_pretrained (from
# their repository; never committed); without it the diagnosis rows are
# skipped. Committed extractors (reported/extractors/) are used where they
# exist instead of pretraining again.
set -u
cd "$(dirname "$0")/.."
D=${DATA:?set DATA to the directory holding cifar-10-batches-py}
R=${RUNS:-$HOME/plr_runs}
EXT=reported/extractors
declare -A ID=([arch1]=arch1_7ef95987 [arch2]=arch2_f00546dd)
dirs=()
for arch in arch1 arch2; do
  if [ -f $EXT/${arch}_cifar10_100ep/meta.json ]; then
    dirs+=($EXT/${arch}_cifar10_100ep)
    continue
  fi
  out=$R/table1/extractor_${ID[$arch]}
  [ -f $out/meta.json ] || python -m experiments.pretrain --arch=$arch \
      --epochs=100 --seeds=0 --data_dir=$D --workdir=$out || exit $?
  dirs+=($out)
done
ours=$(IFS=,; echo "${dirs[*]}")
if [ -n "${AUTHORS:-}" ]; then
  for arch in arch1 arch2; do
    [ -f $R/extractors/bir_$arch/meta.json ] || python -m \
        experiments.import_extractor --checkpoint=$AUTHORS --arch=$arch \
        --dest=$R/extractors/bir_$arch || exit $?
  done
fi
row() {  # row ID ours|bir
  local work=$R/table1 given=$ours
  if [ "$2" = bir ]; then
    [ -n "${AUTHORS:-}" ] || return 0
    work=$R/table1_bir given=$R/extractors/bir_arch1,$R/extractors/bir_arch2
  fi
  echo "== $(date -u +%FT%TZ) $1 ($2)"
  python -m experiments.reproduce table1 --workdir=$work --data_dir=$D \
      --rows=$1 --seeds=0,1,2 --extractor_dirs=$given || exit $?
}
row table1_arch1_ir ours; row table1_arch1_ir bir
row table1_arch2_ir ours; row table1_arch2_ir bir
row table1_arch1_0.3_0.7 ours; row table1_arch1_0.3_0.7 bir
row table1_arch2_0.2_0.3_0.5 ours; row table1_arch2_0.2_0.3_0.5 bir
row table1_arch1_0.7_0.3 ours; row table1_arch1_0.5_0.5 ours
row table1_arch2_0.5_0.3_0.2 ours; row table1_arch2_0.34_0.33_0.33 ours
echo "== $(date -u +%FT%TZ) done"
