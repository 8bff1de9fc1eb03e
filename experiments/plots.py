r"""Figures and a combined table from finished run directories.

  python -m experiments.plots WORKDIR [WORKDIR ...] --out=DIR --format=pdf

Writes into --out (default: the first WORKDIR):
  heatmap_<i>.<fmt>        accuracy matrix of run i's first seed (tasks not
                           trained yet blank, values in the cells);
  accuracy_per_task.<fmt>  average accuracy over the tasks seen after each
                           task, mean +- SEM over seeds, one line per run;
  accuracy_vs_r.<fmt>      final accuracy against the relative cost R;
  summary.md               the runs as one table laid out like the paper's.
"""

from absl import flags

from experiments import common
from plr_jax.eval import plots

flags.DEFINE_string('out', None, 'Output directory (default: the first '
                    'WORKDIR).')
flags.DEFINE_list('format', ['png'], 'Figure formats: png, pdf or both '
                  '(png,pdf).')
FLAGS = flags.FLAGS


def main(*workdirs: str):
  if not workdirs:
    raise common.FlagError('give at least one WORKDIR')
  try:
    paths = plots.plot(plots.load_runs(list(workdirs)),
                       FLAGS.out or workdirs[0], tuple(FLAGS.format))
  except ValueError as e:
    raise common.FlagError(str(e)) from None
  for path in paths:
    print(path)


if __name__ == '__main__':
  common.run_main(main, positional='*')
