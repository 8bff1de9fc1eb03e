r"""Table 2: split CIFAR-100, 10 tasks, generative PLR against IR.

  python -m experiments.split_cifar100 --workdir=/tmp/plr/a1_03_07 \
      --data_dir=DATA --arch=arch1 --strategy=0.3,0.7 --seeds=0,1,2

Without an extractor checkpoint (--extractor_dir, default WORKDIR/extractor)
it first pretrains one on CIFAR-10 there, so one command does the whole job.
"""

from absl import app
from absl import flags
from absl import logging

from experiments import common
from plr_jax import experiment

common.define_cifar_flags('"ir" or fractions per level, e.g. 0.3,0.7 (ARCH1) '
                          'or 0.5,0.3,0.2 (ARCH2).')
flags.DEFINE_bool('mfid', True, "Compute mFID of each seed's generator.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax logs every read at INFO
  experiment.main_guard(lambda: common.run_cifar(
      'split_cifar100', 'cifar100', num_tasks=10, replay='generative',
      compute_mfid=FLAGS.mfid))


if __name__ == '__main__':
  app.run(main)
