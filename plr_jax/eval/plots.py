r"""Plots and a combined table from run directories.

  python -m plr_jax.eval.plots WORKDIR [WORKDIR ...] [--out=DIR]

Writes, into --out (default: the first WORKDIR):
  heatmap_<run>.png       accuracy matrix of each run's first seed;
  accuracy_per_task.png   average accuracy after each task, one line per run;
  accuracy_vs_r.png       final accuracy (mean +- SEM) against R (paper);
  summary.md              the runs as one table laid out like the paper's.
"""

import argparse
import json
import os
import sys

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from plr_jax.eval import results as results_lib


def load_runs(workdirs: list[str]) -> list[dict]:
  runs = []
  for workdir in workdirs:
    path = os.path.join(workdir, 'results.json')
    if not os.path.isfile(path):
      raise ValueError(f'no results.json in {workdir}')
    with open(path) as fh:
      record = json.load(fh)
    if 'per_seed' not in record:
      raise ValueError(f'{path} is not the record of a continual run')
    record['_workdir'] = workdir
    runs.append(record)
  return runs


def _label(run: dict) -> str:
  return f'{run["arch"].upper()} {run["strategy_name"]}'


def plot(runs: list[dict], out: str) -> list[str]:
  """Writes the figures and summary.md; returns the paths written."""
  os.makedirs(out, exist_ok=True)
  written = []
  for i, run in enumerate(runs):
    matrix = np.asarray(run['per_seed'][0]['accuracy_matrix'])
    fig, ax = plt.subplots(figsize=(4 + 0.3 * len(matrix),
                                    3.5 + 0.3 * len(matrix)))
    im = ax.imshow(100 * matrix, vmin=0, vmax=100, cmap='viridis')
    ax.set_xlabel('task evaluated')
    ax.set_ylabel('after training task')
    ticks = np.arange(len(matrix))
    ax.set_xticks(ticks, ticks + 1)
    ax.set_yticks(ticks, ticks + 1)
    ax.set_title(f'{_label(run)}, seed {run["seeds"][0]}', fontsize=9)
    fig.colorbar(im, ax=ax, label='accuracy (%)')
    written.append(_save(fig, os.path.join(out, f'heatmap_{i}.png')))

  fig, ax = plt.subplots(figsize=(6, 4))
  for run in runs:
    curves = []
    for seed in run['per_seed']:
      m = np.asarray(seed['accuracy_matrix'])
      # After task i, the mean over the tasks seen so far.
      curves.append([m[i, :i + 1].mean() for i in range(len(m))])
    curves = 100 * np.asarray(curves)
    x = np.arange(1, curves.shape[1] + 1)
    ax.errorbar(x, curves.mean(0), yerr=_sem(curves), label=_label(run),
                capsize=2, marker='o', ms=3)
  ax.set_xlabel('tasks learnt')
  ax.set_ylabel('average accuracy on tasks seen (%)')
  ax.legend(fontsize=7)
  written.append(_save(fig, os.path.join(out, 'accuracy_per_task.png')))

  fig, ax = plt.subplots(figsize=(5, 4))
  for run in runs:
    ax.errorbar(100 * run['r_paper'], 100 * run['average_accuracy_mean'],
                yerr=100 * run['average_accuracy_sem'], marker='o',
                capsize=3, label=_label(run))
  ax.set_xlabel('relative cost R, paper accounting (%)')
  ax.set_ylabel('final average accuracy (%)')
  ax.legend(fontsize=7)
  written.append(_save(fig, os.path.join(out, 'accuracy_vs_r.png')))

  path = os.path.join(out, 'summary.md')
  results_lib.write_text_atomic(
      path, '\n'.join(results_lib.table_rows(runs)) + '\n')
  written.append(path)
  return written


def _save(fig, path: str) -> str:
  fig.savefig(path, dpi=100, bbox_inches='tight')
  plt.close(fig)
  return path


def _sem(curves: np.ndarray) -> np.ndarray:
  if len(curves) < 2:
    return np.zeros(curves.shape[1])
  return curves.std(0, ddof=1) / np.sqrt(len(curves))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog='python -m plr_jax.eval.plots', description=__doc__.split('\n')[0])
  parser.add_argument('workdirs', nargs='+')
  parser.add_argument('--out', default=None)
  args = parser.parse_args(argv)
  try:
    runs = load_runs(args.workdirs)
    for path in plot(runs, args.out or args.workdirs[0]):
      print(path)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
