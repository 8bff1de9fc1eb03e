r"""Figure 4: Internal Replay on split CIFAR-100 against the extractor's
pretraining (number of CIFAR-10 classes, augmentation on or off).

  python -m experiments.pretraining_ablation --workdir=runs/fig4 \
      --data_dir=DATA --class_counts=0,2,4,6,8,10 --seeds=0,1,2

The same as `python -m experiments.reproduce fig4` with a choice of class
counts and augmentation settings. A class count of 0 means no pretraining
(a randomly initialised, frozen extractor). Each setting runs in
WORKDIR/<run id>/ with its own extractor; WORKDIR/results.md and
results.json collect them.
"""

from absl import flags

from experiments import common
from experiments import reproduce
from experiments.configs import fig4

flags.DEFINE_string('arch', 'arch1', 'arch1 or arch2.')
flags.DEFINE_list('class_counts', ['0', '2', '4', '6', '8', '10'],
                  'CIFAR-10 classes to pretrain on; 0: no pretraining.')
flags.DEFINE_list('augment', ['true', 'false'], 'Augmentation settings.')
flags.adopt_module_key_flags(common)
flags.adopt_module_key_flags(reproduce)
FLAGS = flags.FLAGS


def _bools(values):
  table = {'true': True, '1': True, 'false': False, '0': False}
  try:
    return tuple(table[v.lower()] for v in values)
  except KeyError:
    raise common.FlagError(f'--augment takes true/false, got '
                           f'{",".join(values)}') from None


def main():
  try:
    counts = tuple(int(c) for c in FLAGS.class_counts)
  except ValueError:
    raise common.FlagError('--class_counts must be integers') from None
  bad = [c for c in counts if not 0 <= c <= 10]
  if bad:
    raise common.FlagError(f'--class_counts must be in 0..10, got '
                           f'{",".join(map(str, bad))}')
  rows = common.preset_config(fig4.rows, FLAGS.preset, common.seeds(),
                              FLAGS.arch, counts, _bools(FLAGS.augment))
  reproduce.run_rows(fig4.TITLE, rows, fmt=FLAGS.format)


if __name__ == '__main__':
  common.run_main(main)
