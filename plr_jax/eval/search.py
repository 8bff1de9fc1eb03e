"""A strategy search's results: each strategy's accuracy against IR on the
same seeds, its replay cost, and the Pareto front of accuracy against cost
(`experiments.search`)."""

import dataclasses
import json
import os
from typing import Any, Sequence

import jax
import numpy as np

from plr_jax.eval import accuracy as evaluation
from plr_jax.io import atomic
from plr_jax.io import workdir as workdir_lib
from plr_jax.models import arch as arch_lib
from plr_jax.models import init as model_init
from plr_jax.train import optim
from plr_jax.train import replay as replay_lib
from plr_jax.train import steps
from plr_jax.train import strategy as strategy_lib


@dataclasses.dataclass(frozen=True)
class Candidate:
  """One strategy of a search.

  Attributes:
    run_id: its run directory's name.
    name: what tables call it ("IR", a rule's name, or its fractions).
    strategy: the fractions per level.
    origin: "ir", "rule", "grid" or "paper" (one of the paper's strategies
      for this protocol and architecture).
  """
  run_id: str
  name: str
  strategy: tuple[float, ...]
  origin: str


def merge_alike(entries: Sequence[tuple[Candidate, Any]], replay_size: int
                ) -> list[tuple[Candidate, Any]]:
  """`entries` ((candidate, anything) pairs) with each run computed once.

  Two strategies compute the same run when they split the replay batch into
  the same rows per level (`strategy.split_batch`) and use the same levels
  (a generator with `recon_levels=used` learns those): ARCH1's
  cumulative_weights [0.3985, 0.6015] and [0.4, 0.6] both give 102 + 154
  of 256 rows. The first entry of such a group stays, named for all of them
  ("cumulative_weights = S=[0.4, 0.6]"; equal fractions add no name).
  """
  out, index = [], {}
  for candidate, extra in entries:
    key = (strategy_lib.split_batch(candidate.strategy, replay_size),
           tuple(f > 0 for f in candidate.strategy))
    if key not in index:
      index[key] = len(out)
      out.append((candidate, extra))
      continue
    kept, kept_extra = out[index[key]]
    same = all(abs(a - b) < 1e-9
               for a, b in zip(kept.strategy, candidate.strategy))
    if not same and candidate.name not in kept.name.split(' = '):
      out[index[key]] = (dataclasses.replace(
          kept, name=f'{kept.name} = {candidate.name}'), kept_extra)
  return out


def replay_flops(arch: arch_lib.ArchConfig, strategy, replay_size: int
                 ) -> float:
  """XLA's FLOP count of the classifier's replay update alone (the replay
  slices at their levels, forward and backward, and the gated Adam step)
  for one replay batch: what a strategy changes in an iteration's cost."""
  tx = optim.adam()
  step = steps.make_classifier_step(arch, tx, strategy, replay_size,
                                    with_current=False, jit=False)
  keys = jax.random.split(jax.random.key(0), arch.num_levels + 1)
  replay = replay_lib.ReplayBatch(
      levels=tuple(jax.random.normal(k, (replay_size, d))
                   for k, d in zip(keys, arch.level_dims)),
      logits=jax.random.normal(keys[-1], (replay_size, arch.num_classes)))
  params = {k: v for k, v in model_init.init_classifier(
      arch, jax.random.key(0))['params'].items() if k != 'extractor'}
  state = steps.TrainState.create(params, tx)
  info = steps.task_info(2, np.arange(arch.num_classes),
                         2 if arch.num_classes % 2 == 0 else 1)
  compiled = jax.jit(lambda s, r: step(s, None, r, info)).lower(
      state, replay).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return float(cost['flops'])


def pareto_front(costs, accuracies) -> list[bool]:
  """Whether each point is on the front of lower cost and higher accuracy:
  no other point is at least as cheap and at least as accurate, and better
  in one of the two."""
  costs, accuracies = np.asarray(costs), np.asarray(accuracies)
  front = []
  for c, a in zip(costs, accuracies):
    dominated = np.any((costs <= c) & (accuracies >= a)
                       & ((costs < c) | (accuracies > a)))
    front.append(not bool(dominated))
  return front


def paired_difference(record: dict, ir_record: dict) -> tuple[float, float]:
  """Mean and SEM over the seeds both ran of (accuracy - IR's accuracy)."""
  ir = {s['seed']: s['average_accuracy'] for s in ir_record['per_seed']}
  diffs = [s['average_accuracy'] - ir[s['seed']] for s in record['per_seed']
           if s['seed'] in ir]
  if not diffs:
    return float('nan'), float('nan')
  return evaluation.mean_and_sem(diffs)


def summarise(candidates: list[Candidate], records: dict, flops: dict
              ) -> list[dict]:
  """One row per finished candidate (`records`: run id -> results.json),
  ranked by accuracy, with the paired difference to IR, R, the measured
  replay FLOPs, wall time and whether it is on the Pareto front of accuracy
  against R (exact)."""
  ir = next((records[c.run_id] for c in candidates
             if c.origin == 'ir' and c.run_id in records), None)
  rows = []
  for c in candidates:
    record = records.get(c.run_id)
    if record is None:
      continue
    diff = paired_difference(record, ir) if ir else (float('nan'),) * 2
    rows.append({
        'run_id': c.run_id, 'name': c.name, 'origin': c.origin,
        'strategy': list(c.strategy),
        'accuracy': record['average_accuracy_mean'],
        'accuracy_sem': record['average_accuracy_sem'],
        'vs_ir': diff[0], 'vs_ir_sem': diff[1],
        'seeds': record['seeds'],
        'r_paper': record['r_paper'], 'r_exact': record['r_exact'],
        'replay_flops': flops.get(c.run_id),
        'wall_time_s': record['timing']['wall_time_s']})
  front = pareto_front([r['r_exact'] for r in rows],
                       [r['accuracy'] for r in rows])
  for row, on in zip(rows, front):
    row['pareto'] = on
  rows.sort(key=lambda r: -r['accuracy'])
  return rows


def screen_select(rows: list[dict], points: float) -> list[str]:
  """The run ids a screened search runs on all its seeds: IR, the paper's
  strategies, and every strategy within `points` percentage points of IR
  on the screening seed or on that seed's Pareto front (`rows`: `summarise`
  of the one-seed runs, whose `vs_ir` is then that seed's difference)."""
  chosen = []
  for r in rows:
    close = np.isfinite(r['vs_ir']) and 100 * r['vs_ir'] >= -points
    if r['origin'] in ('ir', 'paper') or close or r['pareto']:
      chosen.append(r['run_id'])
  return chosen


def screened_lines(rows: list[dict], chosen: list[str], seed: int,
                   points: float) -> list[str]:
  """results.md's account of a screened search: the policy, and the
  strategies that ran on the screening seed only, with that seed's
  numbers."""
  left = [r for r in rows if r['run_id'] not in chosen]
  lines = [f'**Screened:** every strategy first ran on seed {seed} alone; '
           f'IR, the paper\'s strategies and those within {points:g} points '
           f'of IR on that seed or on its Pareto front ({len(chosen)}) ran on '
           f'all seeds and are ranked below; {len(left)} ran on seed {seed} '
           'only:', '']
  if left:
    lines += ['| strategy | fractions | origin | accuracy, seed '
              f'{seed} | vs IR, seed {seed} | R (exact) |',
              '|---|---|---|---|---|---|']
    for r in left:
      lines.append(f'| {r["name"]} | '
                   f'{", ".join(f"{f:.3g}" for f in r["strategy"])} | '
                   f'{r["origin"]} | {_pct(r["accuracy"])}% | '
                   f'{_pct(r["vs_ir"], signed=True)} | '
                   f'{100 * r["r_exact"]:.1f}% |')
    lines.append('')
  return lines


def _pct(value, sem=None, signed=False) -> str:
  if value is None or not np.isfinite(value):
    return '-'
  text = f'{100 * value:+.1f}' if signed else f'{100 * value:.1f}'
  return text + ('' if sem is None else f' +- {100 * sem:.1f}')


def write(workdir: str, title: str, rows: list[dict], pending: list[str],
          lines_before: list[str]) -> None:
  """`results.md` (the ranking) and `results.json` of a search."""
  lines = [f'# {title}', ''] + lines_before + [
      '| rank | strategy | fractions | origin | accuracy | vs IR (paired) '
      '| R (paper) | R (exact) | replay GFLOP | wall time | front |',
      '|---|---|---|---|---|---|---|---|---|---|---|']
  for rank, r in enumerate(rows, 1):
    gflop = (f'{r["replay_flops"] / 1e9:.3g}' if r['replay_flops']
             else '-')
    lines.append(
        f'| {rank} | {r["name"]} | '
        f'{", ".join(f"{f:.3g}" for f in r["strategy"])} | {r["origin"]} | '
        f'{_pct(r["accuracy"], r["accuracy_sem"])}% | '
        f'{_pct(r["vs_ir"], r["vs_ir_sem"], signed=True)} | '
        f'{100 * r["r_paper"]:.1f}% | {100 * r["r_exact"]:.1f}% | {gflop} | '
        f'{r["wall_time_s"] / 60:.1f} min | {"yes" if r["pareto"] else ""} |')
  lines += ['', 'vs IR: the mean over the seeds both ran of the accuracy '
            "difference to IR, +- its SEM. Front: no other strategy is at "
            'least as accurate at no more R (exact). Replay GFLOP: XLA\'s '
            "count for the classifier's update from one replay batch. Wall "
            'time: training over every process, as if run alone (a strategy '
            'that took task 1 from another counts that task 1).', '']
  if pending:
    lines += [f'Not finished yet ({len(pending)}): ' + ', '.join(pending),
              '']
  paths = workdir_lib.Workdir(workdir)
  atomic.write_text(paths.results_md, '\n'.join(lines))
  atomic.write_json(paths.results_json,
                    {'title': title, 'rows': rows, 'pending': pending})


def load(workdir: str, run_id: str) -> dict | None:
  """A candidate's `results.json`, or None while it has not finished."""
  path = workdir_lib.Workdir(workdir).row(run_id).results_json
  if not os.path.isfile(path):
    return None
  with open(path) as fh:
    return json.load(fh)
