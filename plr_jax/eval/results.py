"""Run records: `results.json` (everything) and `results.md` (the paper's table).

Both are written to a temporary name and renamed, so a crash never leaves a
half-written file. Timing fields are kept under `timing` so that two runs
with the same seed can be compared byte for byte without them.
"""

import os

import numpy as np

from plr_jax.io import checkpoint
from plr_jax.eval import accuracy as evaluation
from plr_jax.train import strategy as strategy_lib

DATA_LABELS = {
    'exact': 'exact data',
    'jpeg': 'JPEG CIFAR-10 (lossy stand-in)',
    'fake': 'FAKE data (tests only)',
}


def strategy_name(strategy) -> str:
  """`IR` for [1, 0, ..], else `S=[f_0, ..]` as in the paper's tables."""
  if strategy[0] == 1.0:
    return 'Internal Replay'
  return 'S=[' + ', '.join(f'{f:g}' for f in strategy) + ']'


def summarise(experiment: str, config: dict, arch, strategy, seeds,
              per_seed: list[dict], data_label: str, extra: dict | None = None,
              name: str | None = None) -> dict:
  """The `results.json` record of one run over several seeds.

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
    name: what the tables call the run (default: `strategy_name`).
  """
  accuracies = [r['average_accuracy'] for r in per_seed]
  mean, sem = evaluation.mean_and_sem(accuracies)
  record = {
      'experiment': experiment,
      'config': config,
      'arch': arch.name,
      'strategy': list(strategy),
      'strategy_name': name or strategy_name(strategy),
      'seeds': list(seeds),
      'data': data_label,
      'r_paper': strategy_lib.relative_cost(strategy, arch, 'paper'),
      'r_exact': strategy_lib.relative_cost(strategy, arch, 'exact'),
      'per_seed': [{k: v for k, v in r.items() if k != 'wall_time_s'}
                   for r in per_seed],
      'average_accuracy_mean': mean,
      'average_accuracy_sem': sem,
      'timing': {'wall_time_s_per_seed': [r['wall_time_s'] for r in per_seed],
                 'wall_time_s': float(sum(r['wall_time_s'] for r in per_seed))},
  }
  mfids = [r['mfid'] for r in per_seed if r.get('mfid') is not None]
  if mfids:
    record['mfid_mean'] = float(np.mean(mfids))
  record.update(extra or {})
  return record


def table_rows(records: list[dict]) -> list[str]:
  """Markdown rows: Architecture | Strategy | R paper | R exact | mFID | Acc."""
  rows = ['| Architecture | Strategy | R (paper) | R (exact) | mFID | '
          'Accuracy | seeds | data |',
          '|---|---|---|---|---|---|---|---|']
  for r in records:
    mfid = f'{r["mfid_mean"]:.0f}' if 'mfid_mean' in r else '-'
    rows.append(
        f'| {r["arch"].upper()} | {r["strategy_name"]} | '
        f'{100 * r["r_paper"]:.1f}% | {100 * r["r_exact"]:.1f}% | {mfid} | '
        f'{100 * r["average_accuracy_mean"]:.1f}% +- '
        f'{100 * r["average_accuracy_sem"]:.1f}% | {len(r["seeds"])} | '
        f'{DATA_LABELS.get(r["data"], r["data"])} |')
  return rows


def write(workdir: str, record: dict) -> None:
  """Writes `results.json` and `results.md` atomically."""
  checkpoint.write_json_atomic(os.path.join(workdir, 'results.json'), record)
  lines = [f'# {record["experiment"]}: {record["arch"].upper()} '
           f'{record["strategy_name"]}', '']
  lines += table_rows([record])
  lines += ['', 'Accuracy matrix of seed '
            f'{record["seeds"][0]} (row: after task i, column: task j):', '']
  matrix = np.asarray(record['per_seed'][0]['accuracy_matrix'])
  lines.append('| after \\ task | ' + ' | '.join(
      str(j + 1) for j in range(matrix.shape[1])) + ' |')
  lines.append('|---' * (matrix.shape[1] + 1) + '|')
  for i, row in enumerate(matrix):
    lines.append(f'| {i + 1} | ' + ' | '.join(f'{100 * a:.1f}' for a in row)
                 + ' |')
  lines += ['', f'Wall time: {record["timing"]["wall_time_s"]:.1f} s '
            f'for {len(record["seeds"])} seed(s).', '']
  write_text_atomic(os.path.join(workdir, 'results.md'), '\n'.join(lines))


def write_text_atomic(path: str, text: str) -> None:
  """Writes `text` to a temporary name, then renames it over `path`."""
  tmp = f'{path}.tmp.{os.getpid()}'
  with open(tmp, 'w') as fh:
    fh.write(text)
  os.replace(tmp, path)
