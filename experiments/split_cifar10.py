r"""Table 1: split CIFAR-10, 2 tasks, buffer replay of 512 stored samples.

  python -m experiments.split_cifar10 --workdir=/tmp/plr/t1_a1_ir \
      --data_dir=DATA --arch=arch1 --strategy=ir --seeds=0,1,2

The stored first-task samples' representations at every level are recomputed
by the previous classifier and replayed with the strategy; no generator.
"""

from absl import app
from absl import flags
from absl import logging

from experiments import common
from plr_jax import config
from plr_jax import data
from plr_jax import experiment

flags.DEFINE_string('arch', 'arch1', 'arch1 or arch2.')
flags.DEFINE_string('strategy', 'ir', '"ir" or fractions per level.')
flags.DEFINE_string('extractor_dir', None, 'Pretrained extractor checkpoint '
                    '(default WORKDIR/extractor; pretrained there on CIFAR-10 '
                    'if absent).')
flags.DEFINE_integer('pretrain_epochs', None, "Default: the preset's (100).")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax logs every read at INFO
  def run():
    arch = common.arch(FLAGS.arch, ('arch1', 'arch2'))
    strategy = common.strategy(FLAGS.strategy, arch)
    seeds, preset = common.seeds(), common.preset()
    iters, label = common.iters_per_task(), common.data_label()
    workdir = common.workdir()
    cifar10 = data.load('cifar10', FLAGS.data_dir)
    extractor, meta = experiment.get_extractor(
        arch, common.extractor_dir(FLAGS.extractor_dir, workdir),
        FLAGS.data_dir, FLAGS.pretrain_epochs or preset.pretrain_epochs,
        seed=0)
    experiment.run_continual(
        'split_cifar10', config.with_classes(arch, 10), strategy, cifar10,
        extractor, meta, num_tasks=2, preset=preset, seeds=seeds,
        workdir=workdir, iters_per_task=iters, replay='buffer',
        compute_mfid=False, data_label=label, flags=common.flag_values())
  experiment.main_guard(run)


if __name__ == '__main__':
  app.run(main)
