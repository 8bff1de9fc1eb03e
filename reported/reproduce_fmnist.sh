#!/usr/bin/env bash
# Figure 5 runs of issue 18, one after another; rerun to resume (every command
# resumes from its checkpoints; finished ones are skipped).
set -u
cd "$(dirname "$0")/.."
R=${RUNS:-runs}
mkdir -p "$R"
fm() { local name=$1; shift
  python -m experiments.fashion_mnist --workdir=$R/$name "$@" >> $R/$name.log 2>&1
  echo "$(date -u +%FT%TZ) $name rc=$?" >> $R/reproduce_fmnist.done; }
fm fig5_gr_authors_command --setup=gr --preset=authors --seeds=0
for m in all only_last_layer; do
  fm fig5_plr_ir_$m --setup=ir_frozen --strategy=ir --recon_levels=$m --seeds=0,1,2
done
for s in 0.2,0.3,0.5 0.5,0.3,0.2; do
  for m in all only_last_layer; do
    fm fig5_plr_${s//,/_}_$m --setup=ir_frozen --strategy=$s --recon_levels=$m --seeds=0,1,2
  done
done
fm fig5_ir_frozen_authors_setup --setup=ir_frozen --preset=authors --seeds=0,1,2
fm fig5_gr_frozen_authors_setup --setup=gr_frozen --preset=authors --seeds=0
fm fig5_ir_naive_authors_setup --setup=ir_naive --preset=authors --seeds=0
# GR, 3 seeds: seed 0 is the authors' command above (the same configuration).
# Where that run directory is gone, seed 0's finished record is rebuilt from
# reported/fig5_gr_authors_command.json (what the binary keeps of a finished
# seed: checkpoints/seeds_0/records.json).
mkdir -p $R/fig5_gr_authors_setup/checkpoints
if [ ! -d $R/fig5_gr_authors_setup/checkpoints/seeds_0 ]; then
  if [ -d $R/fig5_gr_authors_command/checkpoints/seeds_0 ]; then
    cp -r $R/fig5_gr_authors_command/checkpoints/seeds_0 $R/fig5_gr_authors_setup/checkpoints/
  else
    mkdir -p $R/fig5_gr_authors_setup/checkpoints/seeds_0
    python - reported/fig5_gr_authors_command.json $R/fig5_gr_authors_setup/checkpoints/seeds_0/records.json <<'PY'
import json, sys
record = json.load(open(sys.argv[1]))
seconds = record['timing']['wall_time_s_per_seed']
json.dump([dict(r, wall_time_s=t) for r, t in zip(record['per_seed'], seconds)],
          open(sys.argv[2], 'w'))
PY
  fi
fi
fm fig5_gr_authors_setup --setup=gr --preset=authors --seeds=0,1,2 --set=loop.vmap_seeds=false
