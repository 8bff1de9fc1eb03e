r"""Table 1: split CIFAR-10, 2 tasks, buffer replay of 512 stored samples.

  python -m experiments.split_cifar10 --workdir=/tmp/plr/t1_a1_ir \
      --data_dir=DATA --arch=arch1 --strategy=ir --seeds=0,1,2

The stored first-task samples' representations at every level are recomputed
by the previous classifier and replayed with the strategy; no generator.
"""

from absl import app
from absl import logging

from experiments import common
from plr_jax import experiment

common.define_cifar_flags('"ir" or fractions per level.')


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax logs every read at INFO
  experiment.main_guard(lambda: common.run_cifar(
      'split_cifar10', 'cifar10', num_tasks=2, replay='buffer',
      compute_mfid=False))


if __name__ == '__main__':
  app.run(main)
