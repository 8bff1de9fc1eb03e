r"""Strategy search: which PLR strategies keep IR's accuracy at less cost.

  python -m experiments.search --protocol=table1 --arch=arch1 --grid=0.1 \
      --workdir=runs/search_t1_a1 --data_dir=DATA \
      --extractor_dirs=reported/extractors/arch1_cifar10_100ep
  python -m experiments.search --protocol=fig5 --grid=0.25 \
      --workdir=runs/search_fmnist --list      # strategies, R, time estimate

Runs IR, the paper's strategies for the protocol and architecture, the
authors' named rules (`--named`, docs/deviations.md) and every strategy of
a simplex grid (`--grid=0.1`: fractions in steps of 0.1), each in its own
resumable directory WORKDIR/<run id>/ (seeds vmapped as in every run;
rerunning the command resumes and skips finished ones). Task 1 replays
nothing, so the strategies share it: the first strategy to finish it leaves
its state in WORKDIR/first_task/ and the others start from there, with the
results they would have had alone (`--noshare_first_task`: each trains its
own; a generator with `--recon_levels=used` learns the strategy's levels in
task 1 too, and shares nothing). Then writes
WORKDIR/results.md and results.json ranking them (accuracy +- SEM, the
paired difference with IR on the same seeds, R paper and exact, XLA's
replay FLOPs, wall time, the Pareto front of accuracy against R exact) and
WORKDIR/figures/pareto.png and .pdf. Protocols: table1 (split CIFAR-10,
buffer replay; arch1 or arch2), fig5 (Fashion-MNIST `ir_frozen` on the
3 x 50 `fmnist` network), table2 (split CIFAR-100, generative; no mFID).
"""

import dataclasses
import json
import os
import time

from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from experiments import common
from experiments import reproduce
from experiments.configs import fig5
from experiments.configs import presets
from experiments.configs import table1
from experiments.configs import table2
from plr_jax import prepare
from plr_jax.eval import plots
from plr_jax.eval import results as results_lib
from plr_jax.eval import search as search_lib
from plr_jax.io import atomic
from plr_jax.io import workdir as workdir_lib
from plr_jax.train import continual
from plr_jax.train import frozen_inputs
from plr_jax.train import replay_kinds
from plr_jax.train import steps
from plr_jax.train import strategy as strategy_lib

flags.DEFINE_string('protocol', 'table1', 'table1, fig5 or table2.')
flags.DEFINE_string('arch', None, 'table1 / table2: arch1 (default) or '
                    'arch2; fig5: fmnist (default).')
flags.DEFINE_float('grid', 0.0, 'Also every strategy whose fractions are '
                   'multiples of this step (0.5, 0.25, 0.1, ...); 0: none.')
flags.DEFINE_bool('named', True, "Also the authors' named rules (basic, "
                  'cumulative_weights, total_weights, input_size, layer_idx).')
flags.DEFINE_bool('share_first_task', True, 'Train task 1 once and start '
                  'every strategy from it (before the first replay the '
                  'strategy changes nothing; the results are the same).')
flags.DEFINE_float('screen', None, 'Spend seeds where they matter: every '
                   'strategy first on the first seed alone (WORKDIR/screen/), '
                   "then all seeds for IR, the paper's strategies and those "
                   'within this many points of IR on that seed or on its '
                   'Pareto front (below 0: only those that beat IR by that '
                   'much). Default: every strategy on all seeds.')
flags.DEFINE_string('shard', None, 'i/n: only every n-th strategy from '
                    'the i-th (0-based), so n processes can share a machine '
                    '(run IR alone first, for task 1; then rerun without '
                    '--shard to rank everything).')
# --list, --rows, --format and --extractor_dirs are reproduce's, as here.
flags.adopt_module_key_flags(reproduce)
flags.adopt_module_key_flags(common)
FLAGS = flags.FLAGS

# protocol: (default arch, the paper's strategies per arch, title).
PROTOCOLS = {
    'table1': ('arch1', {a: [s for (b, s) in table1.PAPER if b == a]
                         for a in table1.ARCHS}, table1.TITLE),
    'fig5': ('fmnist', {'fmnist': ['0.2,0.3,0.5', '0.5,0.3,0.2']},
             'Figure 5 ir_frozen: Fashion-MNIST, 3 x 50 network'),
    'table2': ('arch1', {a: [s for (b, s) in table2.PAPER if b == a]
                         for a in table2.ARCHS}, table2.TITLE),
}


def _config(protocol: str, arch: str, strategy, seeds, preset: str):
  """The run of `strategy` ("ir", fractions, a rule or a tuple)."""
  if protocol == 'table1':
    return table1.config(arch, strategy, seeds, preset)
  if protocol == 'table2':
    return table2.config(arch, strategy, seeds, preset, mfid=False)
  return fig5.config('ir_frozen', strategy, seeds, preset, arch=arch)


def candidates(protocol: str, arch: str, seeds, preset: str, grid: float,
               named: bool) -> list[tuple[search_lib.Candidate, object]]:
  """IR, the paper's strategies, the named rules and the grid, each once,
  with its `presets.Row`.

  Two strategies that split the replay batch into the same rows per level
  (`strategy.split_batch`; cumulative_weights [0.3985, 0.6015] and [0.4,
  0.6] both give ARCH1 102 + 154 of 256 rows) compute the same run: the
  first (IR, the paper's, the rules, the grid, in that order) runs, named
  for both ("cumulative_weights = S=[0.4, 0.6]").
  """
  base = _config(protocol, arch, 'ir', seeds, preset)
  network = base.arch
  wanted = [('ir', 'ir', 'IR')]
  wanted += [(s, 'paper', None)
             for s in PROTOCOLS[protocol][1].get(arch, []) if s != 'ir']
  if named:
    wanted += [(rule, 'rule', rule) for rule in strategy_lib.NAMED]
  if grid:
    try:
      points = strategy_lib.simplex_grid(network.num_levels, grid)
    except ValueError as e:
      raise common.FlagError(f'--grid: {e}') from None
    wanted += [(point, 'grid', None) for point in points]
  out = []
  for strategy, origin, name in wanted:
    fractions = presets.strategy_of(strategy, network)
    label = name or results_lib.strategy_name(fractions)
    suffix = name if origin == 'rule' else presets.strategy_id(fractions)
    run_id = f'{protocol}_{arch}_{suffix}'
    cfg = _config(protocol, arch, strategy if origin == 'rule' else fractions,
                  seeds, preset)
    out.append((search_lib.Candidate(run_id, label, fractions, origin),
                presets.Row(run_id, cfg)))
  return search_lib.merge_alike(out, base.continual.replay_size)


def _seconds_per_iteration(cfg, strategy, task: int) -> float:
  """Seconds per iteration of `cfg`'s run with `strategy` in `task`: a
  chunk of 20 iterations to compile, then 20 timed, on synthetic data of the
  run's shapes (all its seeds, vmapped as the run will; a frozen
  extractor's features cached as the run caches them, their one extraction
  per task not counted)."""
  cont = dataclasses.replace(cfg.continual, strategy=tuple(strategy))
  arch = cont.arch
  shape = (tuple(arch.image_shape) if cont.inputs == 'images'
           else (arch.feature_dim,))
  rows = 40 * arch.num_classes
  x = jnp.asarray(np.random.default_rng(0).normal(size=(rows,) + shape),
                  jnp.float32)
  labels = np.arange(rows) % arch.num_classes
  seeds = list(cfg.seeds)
  batched = cfg.loop.vmap_seeds and len(seeds) > 1
  group = seeds if batched else seeds[:1]
  splits = [continual.task_split(cont, s, labels, labels) for s in group]
  data = continual.task_data(cont, splits, group, task, batched)
  state = continual.stack_seeds(
      [continual.init_state(cont, jax.random.key(s)) for s in group], batched)
  if task > 1:
    state = steps.end_task(state)
  runner = continual.make_chunk_runner(cont, batched)
  y = jnp.asarray(labels, jnp.int32)
  # As the run: a frozen extractor's features once, then dense work.
  cached = frozen_inputs.cached_task(cont, task, state.classifier.params,
                                     np.asarray(x), labels, data, batched)
  if cached:
    runner, x, y, data = cached
  with jax.default_matmul_precision(cfg.precision):
    # The same (static) length as the timed chunk: one compilation, before
    # the clock starts.
    state, metrics = runner(state, x, y, data, 20)
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    state, metrics = runner(state, x, y, data, 20)
    jax.block_until_ready(metrics)
  per_iteration = (time.perf_counter() - start) / 20
  return per_iteration * (1 if batched else len(seeds))


def estimates(rows) -> tuple[dict[str, float], float]:
  """Seconds each row's run should take alone, and the seconds of its task
  1 (the same for every row): task 1 and task 2 iterations timed for IR, a
  task-2 iteration for the strategy replaying at the deepest level only;
  other strategies interpolated linearly in R (exact)."""
  cfg = rows[0].config
  arch, cont = cfg.arch, cfg.continual
  deepest = (0.0,) * (arch.num_levels - 1) + (1.0,)
  first = _seconds_per_iteration(cfg, cont.strategy, 1)
  ir = _seconds_per_iteration(cfg, strategy_lib.internal_replay(
      arch.num_levels), 2)
  low = (_seconds_per_iteration(cfg, deepest, 2) if arch.num_levels > 1
         else ir)
  r_low = strategy_lib.relative_cost(deepest, arch, 'exact')
  out = {}
  for row in rows:
    r = strategy_lib.relative_cost(row.config.continual.strategy, arch,
                                   'exact')
    share = (r - r_low) / (1.0 - r_low) if r_low < 1 else 1.0
    replaying = low + share * (ir - low)
    out[row.run_id] = cont.iters_per_task * (
        first + (cont.num_tasks - 1) * replaying)
  return out, cont.iters_per_task * first


def main():
  protocol = FLAGS.protocol
  if protocol not in PROTOCOLS:
    raise common.FlagError(f'--protocol must be one of '
                           f'{", ".join(PROTOCOLS)}, got {protocol!r}')
  arch = FLAGS.arch or PROTOCOLS[protocol][0]
  pairs = common.preset_config(candidates, protocol, arch, common.seeds(),
                               FLAGS.preset, FLAGS.grid, FLAGS.named)
  only = _selected([c.run_id for c, _ in pairs])
  given = reproduce._given_extractors(FLAGS.extractor_dirs)  # pylint: disable=protected-access
  rows = reproduce.finished_rows([row for _, row in pairs], only, given)
  title = _title(protocol, arch, rows[0].config)
  if FLAGS.list:
    _print_list(title, pairs, rows)
    return
  workdir = common.workdir()
  first_task = (os.path.join(workdir, 'first_task')
                if FLAGS.share_first_task else None)
  if FLAGS.screen is not None:
    _run_screened(title, pairs, rows, only, given, first_task)
    return
  reproduce.run_each(title, rows, only, given, first_task_dir=first_task)
  _write(title, [c for c, _ in pairs], rows, workdir)


def _selected(ids: list[str]) -> list[str]:
  """The run ids --rows and --shard pick ([]: every one)."""
  unknown = sorted(set(FLAGS.rows) - set(ids))
  if unknown:
    raise common.FlagError(f'unknown --rows {",".join(unknown)}; the search '
                           f'has {", ".join(ids)}')
  only = list(FLAGS.rows)
  if FLAGS.shard is None:
    return only
  try:
    index, count = (int(p) for p in FLAGS.shard.split('/'))
    if not 0 <= index < count:
      raise ValueError
  except ValueError:
    raise common.FlagError(f'--shard must be i/n with 0 <= i < n, got '
                           f'{FLAGS.shard!r}') from None
  picked = [i for k, i in enumerate(ids)
            if k % count == index and (not only or i in only)]
  if not picked:
    raise common.FlagError(f'--shard={FLAGS.shard} picks none of the '
                           f'{len(only or ids)} strategies')
  return picked


def _run_screened(title, pairs, rows, only, given, first_task) -> None:
  """--screen: every strategy on the first seed (WORKDIR/screen/), then
  all seeds for those `search.screen_select` keeps."""
  workdir = common.workdir()
  candidates_ = [c for c, _ in pairs]
  seed = rows[0].config.seeds[0]
  protocol, arch = FLAGS.protocol, FLAGS.arch or PROTOCOLS[FLAGS.protocol][0]
  one = reproduce.finished_rows(
      [row for _, row in common.preset_config(
          candidates, protocol, arch, [seed], FLAGS.preset, FLAGS.grid,
          FLAGS.named)], only, given)
  screen_dir = os.path.join(workdir, 'screen')
  one_title = _title(protocol, arch, one[0].config) + ' (screening)'
  reproduce.run_each(one_title, one, only, given,
                     first_task_dir=first_task, workdir=screen_dir)
  ranked = _write(one_title, candidates_, one, screen_dir)
  chosen = search_lib.screen_select(ranked, FLAGS.screen)
  wanted = [i for i in chosen if not only or i in only]
  if wanted:
    reproduce.run_each(title, rows, wanted, given, first_task_dir=first_task)
  keep = [i for i, c in enumerate(candidates_) if c.run_id in chosen]
  _write(title, [candidates_[i] for i in keep], [rows[i] for i in keep],
         workdir, search_lib.screened_lines(ranked, chosen, seed,
                                            FLAGS.screen))


def _print_list(title, pairs, rows) -> None:
  """--list: each strategy with its R and estimated time, and the total
  (task 1 counted once where the strategies share it)."""
  seconds, first_task_s = estimates(rows)
  print(title)
  for (c, _), row in zip(pairs, rows):
    fractions = ', '.join(f'{f:.3g}' for f in c.strategy)
    costs = [100 * strategy_lib.relative_cost(c.strategy, row.config.arch,
                                              how)
             for how in ('paper', 'exact')]
    print(f'{c.run_id}: {c.name} [{fractions}] ({c.origin}), R (paper) '
          f'{costs[0]:.1f}%, R (exact) {costs[1]:.1f}%, about '
          f'{_duration(seconds[c.run_id])} alone')
  cont = rows[0].config.continual
  shared = FLAGS.share_first_task and not replay_kinds.get(
      cont.replay).strategy_in_first_task(cont)
  total = sum(seconds.values()) - (
      (len(rows) - 1) * first_task_s if shared else 0.0)
  print(f'in all about {_duration(total)} on this machine'
        + (f' (task 1, about {_duration(first_task_s)}, once for all)'
           if shared else '')
        + '; task 1 and task 2 iterations timed for IR and for the deepest '
        'level alone, the rest interpolated in R exact; evaluation, '
        'checkpoints and pretraining not included')


def _title(protocol: str, arch: str, cfg) -> str:
  return (f'Strategy search, {PROTOCOLS[protocol][2]}: {arch.upper()}, '
          f'preset {FLAGS.preset}, {len(cfg.seeds)} seed'
          f'{"s" if len(cfg.seeds) > 1 else ""}, '
          f'{cfg.continual.num_tasks} tasks x {cfg.continual.iters_per_task} '
          'iterations')


def _duration(seconds: float) -> str:
  if seconds < 90:
    return f'{seconds:.0f} s'
  if seconds < 5400:
    return f'{seconds / 60:.0f} min'
  return f'{seconds / 3600:.1f} h'


def _write(title, candidates_, rows, workdir, lines_before=()):
  """The ranking, its JSON and the Pareto figure in `workdir`, from what has
  finished there; returns the ranking (`search.summarise`)."""
  records = {c.run_id: search_lib.load(workdir, c.run_id)
             for c in candidates_}
  records = {k: v for k, v in records.items() if v is not None}
  paths = workdir_lib.Workdir(workdir)
  # XLA's FLOP counts take a compilation each: kept between reruns.
  cache_path = os.path.join(paths.root, 'replay_flops.json')
  try:
    with open(cache_path) as fh:
      flops = json.load(fh)
  except (OSError, ValueError):
    flops = {}
  for c, row in zip(candidates_, rows):
    if c.run_id in records and c.run_id not in flops:
      flops[c.run_id] = search_lib.replay_flops(
          row.config.arch, c.strategy, row.config.continual.replay_size)
  atomic.write_json(cache_path, flops)
  ranked = search_lib.summarise(candidates_, records, flops)
  pending = [c.run_id for c in candidates_ if c.run_id not in records]
  search_lib.write(workdir, title, ranked, pending,
                   results_lib.comparability(list(records.values()))
                   + list(lines_before))
  if ranked:
    os.makedirs(paths.figures, exist_ok=True)
    plots.pareto_figure(ranked, os.path.join(paths.figures, 'pareto'), title)
  prepare.log(f'wrote {paths.results_md} ({len(ranked)} strategies'
              f'{f", {len(pending)} not finished" if pending else ""})')
  return ranked


if __name__ == '__main__':
  common.run_main(main)
