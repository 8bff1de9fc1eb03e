"""Figures of finished runs (their `results.json` records).

`plot(records, out, formats)` writes, into `out`:
  heatmap_<i>.<fmt>        the accuracy matrix of run i's first seed (row:
                           after task r, column: task c; cells of tasks not
                           trained yet are blank; values in the cells);
  accuracy_per_task.<fmt>  average accuracy over the tasks seen after each
                           task, mean +- SEM over seeds, one line per run;
  accuracy_vs_r.<fmt>      final accuracy (mean +- SEM) against the relative
                           cost R (paper accounting), one point per run;
  summary.md               the runs as one table laid out like the paper's.
The command line is `python -m experiments.plots`.
"""

import json
import os
import textwrap

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
from matplotlib import ticker  # pylint: disable=g-import-not-at-top
import numpy as np

from plr_jax.eval import results as results_lib
from plr_jax.io import atomic
from plr_jax.io import workdir as workdir_lib

FORMATS = ('png', 'pdf')
_DATASETS = {'cifar100': 'split CIFAR-100', 'cifar10': 'split CIFAR-10',
             'fashion_mnist': 'Fashion-MNIST'}


def load_runs(workdirs: list[str]) -> list[dict]:
  """The `results.json` records of `workdirs` (ValueError if one is not a
  finished continual run)."""
  runs = []
  for workdir in workdirs:
    path = workdir_lib.Workdir(workdir).results_json
    if not os.path.isfile(path):
      raise ValueError(f'no results.json in {workdir}')
    with open(path) as fh:
      record = json.load(fh)
    if 'per_seed' not in record:
      raise ValueError(f'{path} is not the record of a continual run')
    record['_workdir'] = workdir
    runs.append(record)
  return runs


def labels(runs: list[dict]) -> list[str]:
  """A distinct label per run: architecture and name, with the seeds and
  then the directory added where runs would otherwise share a label."""
  base = [f'{r["arch"].upper()} {r["strategy_name"]}' for r in runs]
  if len(set(base)) < len(base):
    base = [f'{b} (seeds {",".join(map(str, r["seeds"]))})'
            for b, r in zip(base, runs)]
  if len(set(base)) < len(base):
    base = [f'{b} [{os.path.basename(os.path.normpath(r.get("_workdir", "")))}]'
            for b, r in zip(base, runs)]
  return base


def _dataset(run: dict) -> str:
  """The dataset's name, with its data label unless the data is exact."""
  name = _DATASETS.get(run.get('dataset'), run.get('dataset') or '')
  data = run.get('data')
  if data and data != 'exact' and name:
    name += f' ({"JPEG" if data == "jpeg" else data} data)'
  return name


def _datasets(runs: list[dict]) -> str:
  return ', '.join(d for d in sorted({_dataset(r) for r in runs}) if d)


def _not_comparable(runs: list[dict]) -> str:
  """'' or a title line saying that some runs are not the paper's."""
  reasons = sorted({d for r in runs for d in r.get('departures') or ()})
  return ('\nNOT COMPARABLE with the paper: ' + '; '.join(reasons)
          if reasons else '')


def title(run: dict) -> str:
  workdir = os.path.basename(os.path.normpath(run.get('_workdir', '')))
  return (f'{_dataset(run)}, {run["arch"].upper()}, {run["strategy_name"]}'
          + (f' [{workdir}]' if workdir else '') + _not_comparable([run]))


def _styles(count: int):
  """A distinct (colour, marker) for each of `count` runs."""
  colours = plt.get_cmap('tab20').colors
  markers = 'osD^vP*Xhp<>'
  return [(colours[i % len(colours)], markers[(i // 2) % len(markers)])
          for i in range(count)]


def _legend_outside(ax, count: int) -> None:
  ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0, ncol=1 if count <= 25 else 2)


def plot(runs: list[dict], out: str,
         formats: tuple[str, ...] = ('png',)) -> list[str]:
  """Writes the figures (in each of `formats`) and summary.md; returns the
  paths written."""
  bad = sorted(set(formats) - set(FORMATS))
  if bad or not formats:
    raise ValueError(f'figure formats must be among {", ".join(FORMATS)}, '
                     f'got {", ".join(formats) or "none"}')
  os.makedirs(out, exist_ok=True)
  written = []
  names = labels(runs)
  for i, run in enumerate(runs):
    written += _save(heatmap(run), os.path.join(out, f'heatmap_{i}'),
                     formats)
  written += _save(accuracy_per_task(runs, names),
                   os.path.join(out, 'accuracy_per_task'), formats)
  written += _save(accuracy_vs_r(runs, names),
                   os.path.join(out, 'accuracy_vs_r'), formats)
  path = os.path.join(out, 'summary.md')
  atomic.write_text(
      path, '\n'.join(results_lib.comparability(runs)
                      + results_lib.table_rows(runs)
                      + ['', results_lib.R_NOTE]) + '\n')
  written.append(path)
  return written


def heatmap(run: dict):
  """The first seed's accuracy matrix, tasks not trained yet blank."""
  matrix = 100 * np.asarray(run['per_seed'][0]['accuracy_matrix'])
  size = len(matrix)
  untrained = np.triu(np.ones((size, size), bool), k=1)
  fig, ax = plt.subplots(figsize=(3 + 0.55 * size, 2.6 + 0.5 * size))
  image = ax.imshow(np.ma.masked_array(matrix, untrained), vmin=0, vmax=100,
                    cmap='viridis')
  for r in range(size):
    for c in range(r + 1):
      ax.text(c, r, f'{matrix[r, c]:.0f}', ha='center', va='center',
              fontsize=8, color='white' if matrix[r, c] < 60 else 'black')
  ticks = np.arange(size)
  ax.set_xticks(ticks, [str(t + 1) for t in ticks])
  ax.set_yticks(ticks, [str(t + 1) for t in ticks])
  ax.set_xlabel('task evaluated')
  ax.set_ylabel('after training task')
  ax.set_title(f'{title(run)}\nseed {run["seeds"][0]}', fontsize=9)
  fig.colorbar(image, ax=ax, label='accuracy (%)')
  return fig


def accuracy_per_task(runs: list[dict], names: list[str]):
  fig, ax = plt.subplots(figsize=(6, 4))
  for run, name, (colour, marker) in zip(runs, names, _styles(len(runs))):
    curves = []
    for seed in run['per_seed']:
      m = np.asarray(seed['accuracy_matrix'])
      # After task i, the mean over the tasks seen so far.
      curves.append([m[i, :i + 1].mean() for i in range(len(m))])
    curves = 100 * np.asarray(curves)
    x = np.arange(1, curves.shape[1] + 1)
    ax.errorbar(x, curves.mean(0), yerr=_sem(curves), label=name,
                capsize=2, marker=marker, ms=4, color=colour)
  ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
  ax.set_xlabel('tasks learnt')
  ax.set_ylabel('average accuracy on the tasks seen (%)')
  ax.set_title(_datasets(runs) + _not_comparable(runs), fontsize=9)
  _legend_outside(ax, len(runs))
  return fig


def accuracy_vs_r(runs: list[dict], names: list[str]):
  fig, ax = plt.subplots(figsize=(5, 4))
  for run, name, (colour, marker) in zip(runs, names, _styles(len(runs))):
    ax.errorbar(100 * run['r_paper'], 100 * run['average_accuracy_mean'],
                yerr=100 * run['average_accuracy_sem'], marker=marker,
                capsize=3, label=name, color=colour, ls='none')
  ax.set_xlabel('relative cost R, paper accounting (%)')
  ax.set_ylabel('final average accuracy (%)')
  ax.set_title(_datasets(runs) + _not_comparable(runs), fontsize=9)
  _legend_outside(ax, len(runs))
  return fig


def pareto_figure(rows: list[dict], stem: str, title_text: str,
                  formats=FORMATS) -> list[str]:
  """A search's accuracy (mean +- SEM) against R (exact), one point per
  strategy (`eval.search.summarise` rows): the Pareto front joined by a
  line, the paper's strategies, IR and the named rules marked and labelled,
  grid points small and unlabelled (readable with 70 of them)."""
  fig, ax = plt.subplots(figsize=(7.5, 5))
  styles = {'grid': dict(marker='o', s=14, color='0.6', zorder=2),
            'rule': dict(marker='D', s=36, color='tab:blue', zorder=3),
            'paper': dict(marker='*', s=110, color='tab:red', zorder=4),
            'ir': dict(marker='s', s=50, color='black', zorder=4)}
  names = {'grid': 'grid', 'rule': "authors' rules", 'paper': "the paper's",
           'ir': 'IR'}
  for origin, style in styles.items():
    chosen = [r for r in rows if r['origin'] == origin]
    if not chosen:
      continue
    x = [100 * r['r_exact'] for r in chosen]
    y = [100 * r['accuracy'] for r in chosen]
    ax.errorbar(x, y, yerr=[100 * r['accuracy_sem'] for r in chosen],
                fmt='none', ecolor=style['color'], alpha=0.5, zorder=1)
    ax.scatter(x, y, label=names[origin], **style)
    if origin != 'grid':
      # Rules labelled below their point, the others above: the two sets
      # often land close together.
      offset = (4, -10) if origin == 'rule' else (4, 4)
      for r, xi, yi in zip(chosen, x, y):
        ax.annotate(r['name'], (xi, yi), textcoords='offset points',
                    xytext=offset, fontsize=7)
  front = sorted((r for r in rows if r['pareto']), key=lambda r: r['r_exact'])
  if front:
    fx = [100 * r['r_exact'] for r in front]
    fy = [100 * r['accuracy'] for r in front]
    ax.step(fx, fy, where='post', color='tab:green', linewidth=1,
            label='Pareto front', zorder=1)
    ax.scatter(fx, fy, s=90, facecolors='none', edgecolors='tab:green',
               linewidths=1.2, zorder=5)
  ax.set_xlabel('R (exact): replay cost relative to IR, %')
  ax.set_ylabel('average accuracy after the last task, %')
  ax.set_title('\n'.join(textwrap.wrap(title_text, 90)), fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, loc='lower right')
  return _save(fig, stem, formats)


def _save(fig, stem: str, formats) -> list[str]:
  """Writes `fig` in each format; a PDF carries no creation date, so the
  same figure is the same file (a rerun leaves a committed one unchanged)."""
  paths = []
  for fmt in formats:
    paths.append(f'{stem}.{fmt}')
    metadata = {'CreationDate': None} if fmt == 'pdf' else None
    fig.savefig(paths[-1], dpi=120, bbox_inches='tight', metadata=metadata)
  plt.close(fig)
  return paths


def _sem(curves: np.ndarray) -> np.ndarray:
  if len(curves) < 2:
    return np.zeros(curves.shape[1])
  return curves.std(0, ddof=1) / np.sqrt(len(curves))


def table_figures(workdir: str, rows, fmt: str = 'png') -> list[str]:
  """`plot` of a table's finished rows into `WORKDIR/figures/`."""
  table = workdir_lib.Workdir(workdir)
  finished = [table.row(row.run_id).root for row in rows
              if os.path.isfile(table.row(row.run_id).results_json)]
  if not finished:
    return []
  return plot(load_runs(finished), table.figures, (fmt,))
