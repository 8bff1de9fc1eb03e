r"""One command per table or figure: every row and seed, then `results.md`
with the paper's numbers beside ours, and the figure.

  python -m experiments.reproduce table1 --workdir=runs/table1 --data_dir=DATA
  python -m experiments.reproduce table2 --workdir=runs/table2 --data_dir=DATA
  python -m experiments.reproduce fig4 --workdir=runs/fig4 --data_dir=DATA
  python -m experiments.reproduce fig5 --workdir=runs/fig5

Each row runs in WORKDIR/<run id>/ and resumes there: rerunning the command
skips finished rows and continues an interrupted one. Rows of the same
architecture share one pretrained extractor (WORKDIR/extractor_<id>/), or
take a committed one: --extractor_dirs=reported/extractors/A,reported/...
WORKDIR/results.md (and results.json) list every row finished so far with
the paper's number, ours, the difference and the data; WORKDIR/figures/
holds the plots (`python -m experiments.plots`). --rows=ID,... runs only
those rows.
"""

import dataclasses
import json
import os

from absl import flags

from experiments import common
from experiments.configs import TABLES
from plr_jax import prepare
from plr_jax import run
from plr_jax.eval import plots
from plr_jax.eval import results as results_lib
from plr_jax.io import extractors as extractors_lib
from plr_jax.io import workdir as workdir_lib
from plr_jax.train import replay_kinds

common.define_run_flags()
flags.DEFINE_list('rows', [], 'Run ids of the rows to run (default: all; '
                  'see --list).')
flags.DEFINE_bool('list', False, 'Print the rows and their run ids, run '
                  'nothing.')
flags.DEFINE_string('format', 'png', 'Figure format: png or pdf.')
flags.DEFINE_list('extractor_dirs', [], 'Pretrained extractors to use '
                  'instead of pretraining (e.g. reported/extractors/*): '
                  'each row takes the one made for its architecture.')
flags.adopt_module_key_flags(common)
FLAGS = flags.FLAGS


def main(table: str):
  if table not in TABLES:
    raise common.FlagError(f'unknown table {table!r}; choose one of '
                           f'{", ".join(TABLES)}')
  module = TABLES[table]
  rows = common.preset_config(module.rows, FLAGS.preset, common.seeds())
  ids = [row.run_id for row in rows]
  unknown = sorted(set(FLAGS.rows) - set(ids))
  if unknown:
    raise common.FlagError(f'unknown --rows {",".join(unknown)}; {table} has '
                           f'{", ".join(ids)}')
  if FLAGS.list:
    for row in rows:
      print(f'{row.run_id}: {_describe(row)}')
    return
  run_rows(module.TITLE, rows, FLAGS.rows, FLAGS.format,
           _given_extractors(FLAGS.extractor_dirs))


def _describe(row) -> str:
  """e.g. 'ARCH1 S=[0.3, 0.7], 3 seeds, 2 tasks x 5000 iterations; the
  paper: 70.6 +- 1.0% (paper, Table 1)'."""
  cfg = row.config
  text = f'{cfg.arch.name.upper()} {results_lib.run_name(cfg)}'
  if replay_kinds.get(cfg.continual.replay).generates_features:
    text += f', recon_levels={cfg.continual.recon_levels}'
  text += (f', {len(cfg.seeds)} seeds, {cfg.continual.num_tasks} tasks x '
           f'{cfg.continual.iters_per_task} iterations')
  if row.paper is not None:
    sem = f' +- {100 * row.paper_sem:.1f}' if row.paper_sem else ''
    text += f'; the paper: {100 * row.paper:.1f}%{sem}'
    if row.source:
      text += f' ({row.source})'
  return text


def _given_extractors(directories) -> dict[str, str]:
  """{architecture name: directory} of the --extractor_dirs."""
  out = {}
  for directory in directories:
    path = os.path.join(directory, 'meta.json')
    try:
      with open(path) as fh:
        arch = json.load(fh)['arch']
    except (OSError, ValueError, KeyError):
      raise common.FlagError(f'--extractor_dirs: {directory} holds no '
                             'extractor (no readable meta.json naming its '
                             'arch)') from None
    if arch in out:
      raise common.FlagError(f'--extractor_dirs: {out[arch]} and '
                             f'{directory} are both {arch} extractors')
    out[arch] = directory
  return out


def run_rows(title: str, rows, only=(), fmt: str = 'png',
             extractors: dict[str, str] | None = None) -> None:
  """Runs `rows` (those in `only`, if given) in WORKDIR/<run id>/, then
  writes the table and its figures. A row with an extractor uses the one
  `extractors` gives for its architecture, or pretrains one in
  WORKDIR/extractor_<id>/ shared by the rows that need the same."""
  rows = finished_rows(rows, only, extractors)
  run_each(title, rows, only, extractors)
  workdir = common.workdir()
  results_lib.write_table(workdir, title, rows)
  plots.table_figures(workdir, rows, fmt)


def finished_rows(rows, only=(), extractors: dict[str, str] | None = None):
  """`rows` with the binary's flags applied (`common.finish`), after
  checking the given extractors against the rows that will use them."""
  rows = [dataclasses.replace(row, config=common.finish(row.config))
          for row in rows]
  for row in rows:
    given = (extractors or {}).get(row.config.arch.name)
    if given and (not only or row.run_id in only):
      try:
        _, meta = extractors_lib.load_extractor(given, row.config.arch)
      except extractors_lib.CheckpointError as e:
        raise common.FlagError(f'--extractor_dirs: {e}') from None
      classes = len(meta.get('classes', []))
      if classes != row.config.extractor_classes:
        raise common.FlagError(
            f'--extractor_dirs: {given} was pretrained on {classes} '
            f'classes; {row.run_id} needs {row.config.extractor_classes}')
  return rows


def run_each(title: str, rows, only=(),
             extractors: dict[str, str] | None = None,
             first_task_dir: str | None = None,
             workdir: str | None = None) -> None:
  """Runs each row (those in `only`, if given) in WORKDIR/<run id>/ (or
  `workdir`/<run id>/; extractors pretrained here are shared in WORKDIR);
  with `first_task_dir`, rows share task 1 where it is the same
  (`run.run`)."""
  table = workdir_lib.Workdir(common.workdir())
  rows_in = workdir_lib.Workdir(workdir) if workdir else table
  prepare.check_writable(rows_in.root)
  mesh = common.mesh()
  for row in rows:
    if only and row.run_id not in only:
      continue
    prepare.log(f'== {title}: {row.run_id}')
    extractor_dir = None
    if row.config.extractor is not None:
      extractor_dir = (extractors or {}).get(row.config.arch.name) or (
          table.shared_extractor(row.config.extractor_id()))
    run.run(row.config, rows_in.row(row.run_id).root,
            data_dir=common.run_data_dir(row.config),
            extractor_dir=extractor_dir, mesh=mesh,
            should_stop=common.STOP, first_task_dir=first_task_dir)


if __name__ == '__main__':
  common.run_main(main, positional=['table'])
