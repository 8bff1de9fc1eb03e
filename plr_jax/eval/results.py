"""Run records: `results.json` (everything) and `results.md` (the paper's table).

Both are written to a temporary name and renamed, so a crash never leaves a
half-written file. Timing fields are kept under `timing` so that two runs
with the same seed can be compared byte for byte without them.
"""

import json
import os

import numpy as np

from plr_jax.io import atomic
from plr_jax.io import workdir as workdir_lib
from plr_jax.eval import accuracy as evaluation
from plr_jax.train import replay_kinds
from plr_jax.train import strategy as strategy_lib

DATA_LABELS = {
    'exact': 'exact data',
    'jpeg': 'JPEG CIFAR-10 (lossy stand-in)',
    'fake': 'FAKE data (tests only)',
    'unknown': 'data not recognised as an official test set',
}


def strategy_name(strategy) -> str:
  """`IR` for [1, 0, ..], else `S=[f_0, ..]` as in the paper's tables."""
  if strategy[0] == 1.0:
    return 'Internal Replay'
  return 'S=[' + ', '.join(f'{f:g}' for f in strategy) + ']'


def summarise(experiment: str, config: dict, arch, strategy, seeds,
              per_seed: list[dict], data_label: str, extra: dict | None = None,
              name: str | None = None, replays: bool = True) -> dict:
  """The `results.json` record of one run over several seeds.

  Ten parameters: the record's parts, each from another stage of the run
  (`run._write_record` gathers them); the last three are optional.

  Args:
    experiment: binary name, e.g. `split_cifar100`.
    config: the flags and derived settings that define the run.
    arch: the `ArchConfig`.
    strategy: the strategy tuple.
    seeds: the seeds, in order.
    per_seed: one dict per seed with `accuracy_matrix`, `average_accuracy`,
      optional `mfid` and `wall_time_s`.
    data_label: a key of `DATA_LABELS` saying what the numbers were measured on.
    extra: more fields (e.g. the extractor's metadata).
    name: what the tables call the run (default: `strategy_name`, or "no
      replay").
    replays: False for a run that replays nothing (`ReplayKind.replays`):
      its replay costs (R) are 0 and the strategy does not name it.
  """
  accuracies = [r['average_accuracy'] for r in per_seed]
  mean, sem = evaluation.mean_and_sem(accuracies)
  record = {
      'experiment': experiment,
      'config': config,
      'arch': arch.name,
      'strategy': list(strategy),
      'strategy_name': name or (strategy_name(strategy) if replays
                                else NO_REPLAY),
      'seeds': list(seeds),
      'data': data_label,
      'r_paper': replay_cost(strategy, arch, 'paper', replays),
      'r_exact': replay_cost(strategy, arch, 'exact', replays),
      'per_seed': [{k: v for k, v in r.items() if k not in TIMING_KEYS}
                   for r in per_seed],
      'average_accuracy_mean': mean,
      'average_accuracy_sem': sem,
      'timing': _timing(per_seed),
  }
  departures = list(config.get('departures') or ())
  record['comparable'] = not departures
  record['departures'] = departures
  mfids = [r['mfid'] for r in per_seed if r.get('mfid') is not None]
  if mfids:
    record['mfid_mean'] = float(np.mean(mfids))
  record.update(extra or {})
  return record


NO_REPLAY = 'no replay'


def run_name(config) -> str:
  """What tables call a `RunConfig`'s run: its name, else its strategy
  ("IR", "S=[0.3, 0.7]"), or "no replay"."""
  if config.name:
    return config.name
  if not replay_kinds.get(config.continual.replay).replays:
    return NO_REPLAY
  return strategy_name(config.continual.strategy)


def replay_cost(strategy, arch, how: str, replays: bool = True) -> float:
  """R of `strategy` (`strategy.relative_cost`), 0 for a run that replays
  nothing."""
  return strategy_lib.relative_cost(strategy, arch, how) if replays else 0.0


R_NOTE = ('R (paper): the replay cost relative to Internal Replay in the '
          "paper's accounting (the layers a replayed sample passes through); "
          'R (exact): the same with the exact FLOPs of every layer '
          '(docs/design.md).')


def comparability(records: list[dict]) -> list[str]:
  """A first line for outputs that hold runs not comparable with the
  paper ([] when every run is)."""
  reasons = sorted({d for r in records for d in r.get('departures') or ()})
  if not reasons:
    return []
  return ['**Not comparable with the paper:** ' + '; '.join(reasons) + '.',
          '']


def table_rows(records: list[dict]) -> list[str]:
  """Markdown rows: Architecture | Strategy | R paper | R exact | mFID | Acc."""
  rows = ['| Architecture | Strategy | R (paper) | R (exact) | mFID | '
          'Accuracy | seeds | data |',
          '|---|---|---|---|---|---|---|---|']
  for r in records:
    mfid = f'{r["mfid_mean"]:.1f}' if 'mfid_mean' in r else '-'
    rows.append(
        f'| {r["arch"].upper()} | {r["strategy_name"]} | '
        f'{100 * r["r_paper"]:.1f}% | {100 * r["r_exact"]:.1f}% | {mfid} | '
        f'{100 * r["average_accuracy_mean"]:.1f}% +- '
        f'{100 * r["average_accuracy_sem"]:.1f}% | {len(r["seeds"])} | '
        f'{DATA_LABELS.get(r["data"], r["data"])} |')
  return rows


def write(workdir: str, record: dict) -> None:
  """Writes `results.json` and `results.md` atomically."""
  paths = workdir_lib.Workdir(workdir)
  atomic.write_json(paths.results_json, record)
  lines = comparability([record])
  lines += [f'# {record["experiment"]}: {record["arch"].upper()} '
            f'{record["strategy_name"]}', '']
  lines += table_rows([record]) + ['', R_NOTE]
  lines += ['', 'Accuracy matrix of seed '
            f'{record["seeds"][0]} (row: after task i, column: task j; '
            'blank: not trained yet):', '']
  matrix = np.asarray(record['per_seed'][0]['accuracy_matrix'])
  lines.append('| after \\ task | ' + ' | '.join(
      str(j + 1) for j in range(matrix.shape[1])) + ' |')
  lines.append('|---' * (matrix.shape[1] + 1) + '|')
  for i, row in enumerate(matrix):
    lines.append(f'| {i + 1} | ' + ' | '.join(
        f'{100 * a:.1f}' if j <= i else '' for j, a in enumerate(row))
                 + ' |')
  timing = record['timing']
  lines += ['', f'Wall time: {timing["wall_time_s"]:.1f} s in the task '
            f'loops for {len(record["seeds"])} seed(s)' + _processes(timing)
            + (f'; {timing["program_s"]:.1f} s for the whole program'
               if 'program_s' in timing else '')
            + (f', of which {timing["extractor_this_program_s"]:.1f} s '
               'getting the extractor (pretraining or loading)'
               if timing.get('extractor_this_program_s') else '') + '.', '']
  atomic.write_text(paths.results_md, '\n'.join(lines))


# Per-seed timing fields, kept out of `per_seed` (see `summarise`).
TIMING_KEYS = ('wall_time_s', 'this_process_s', 'processes',
               'wall_time_complete', 'first_task_from')


def _timing(per_seed: list[dict]) -> dict:
  """The record's `timing`: the seeds' training time over every process
  that trained them (`wall_time_s`; `wall_time_complete` False where an
  earlier process's checkpoint did not count its time, and then only the
  later processes' time is in it), this process's part, and the most
  processes any seed took (1: never resumed)."""
  timing = {'wall_time_s_per_seed': [r['wall_time_s'] for r in per_seed],
            'wall_time_s': float(sum(r['wall_time_s'] for r in per_seed))}
  if all('this_process_s' in r for r in per_seed):
    timing['this_process_s'] = float(sum(r['this_process_s']
                                         for r in per_seed))
    timing['processes'] = max(r['processes'] for r in per_seed)
    timing['wall_time_complete'] = all(r['wall_time_complete']
                                       for r in per_seed)
  shared = sorted({r['first_task_from'] for r in per_seed
                   if r.get('first_task_from')})
  if shared:
    timing['first_task_from'] = shared
  return timing


def _processes(timing: dict) -> str:
  """How the wall time was gathered, when the run was resumed."""
  processes = timing.get('processes', 1)
  shared = timing.get('first_task_from')
  if shared:
    return (f' over {processes} processes, task 1 by the run in '
            f'{", ".join(shared)} (the same computation)')
  if processes == 1:
    return ''
  if timing.get('wall_time_complete', True):
    return f' over {processes} processes (resumed)'
  return (f' in the last of {processes} processes only (earlier ones did '
          'not record theirs)')


def _percent(value, sem=None) -> str:
  if value is None:
    return '-'
  text = f'{100 * value:.1f}%'
  return text if sem is None else f'{text} +- {100 * sem:.1f}'


def write_table(workdir: str, title: str, rows) -> dict:
  """`WORKDIR/results.md` and `results.json` of a table: each row's paper
  number beside ours (from `WORKDIR/<run id>/results.json`, where the row
  has finished), the difference and the data.

  Args:
    workdir: the table's directory.
    title: the table's heading.
    rows: `experiments.configs.Row`s (run_id, config, paper, paper_sem,
      paper_mfid, source).

  Returns:
    The summary written to `results.json`.
  """
  lines = [f'# {title}', '',
           '| row | run | R (paper) | paper | ours | ours - paper | '
           'mFID paper / ours | seeds | data |',
           '|---|---|---|---|---|---|---|---|---|']
  summary = []
  for row in rows:
    path = workdir_lib.Workdir(workdir).row(row.run_id).results_json
    record = None
    if os.path.isfile(path):
      with open(path) as fh:
        record = json.load(fh)
    ours = record['average_accuracy_mean'] if record else None
    departures = (record.get('departures') or []) if record else []
    diff = (f'{100 * (ours - row.paper):+.1f}'
            if ours is not None and row.paper is not None else '-')
    if departures:
      diff = 'not comparable'
    mfid = '-'
    if row.paper_mfid is not None or (record and 'mfid_mean' in record):
      ours_mfid = (f'{record["mfid_mean"]:.1f}'
                   if record and 'mfid_mean' in record else '-')
      mfid = f'{row.paper_mfid if row.paper_mfid is not None else "-"} / '\
             f'{ours_mfid}'
    replays = replay_kinds.get(row.config.continual.replay).replays
    name = run_name(row.config)
    arch = row.config.arch.name.upper()
    r_paper = replay_cost(row.config.continual.strategy, row.config.arch,
                          'paper', replays)
    data = (DATA_LABELS.get(record['data'], record['data']) if record
            else 'not run yet')
    lines.append(
        f'| {row.run_id} | {arch} {name} | {100 * r_paper:.1f}% | '
        f'{_percent(row.paper, row.paper_sem)} | '
        f'{_percent(ours, record["average_accuracy_sem"] if record else None)}'
        f' | {diff} | {mfid} | {len(row.config.seeds)} | {data} |')
    summary.append({'run_id': row.run_id, 'paper': row.paper,
                    'paper_sem': row.paper_sem, 'paper_mfid': row.paper_mfid,
                    'source': row.source, 'ours': ours,
                    'ours_sem': record['average_accuracy_sem']
                    if record else None,
                    'mfid': record.get('mfid_mean') if record else None,
                    'data': record['data'] if record else None,
                    'comparable': not departures, 'departures': departures})
  sources = sorted({row.source for row in rows if row.source})
  if sources:
    lines += ['', 'Paper numbers: ' + '; '.join(sources) + '.']
  lines += ['', R_NOTE, '']
  done = [s for s in summary if s['ours'] is not None]
  lines = comparability(done) + lines
  table = {'title': title, 'rows': summary}
  paths = workdir_lib.Workdir(workdir)
  atomic.write_json(paths.results_json, table)
  atomic.write_text(paths.results_md, '\n'.join(lines))
  return table

