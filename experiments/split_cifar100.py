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
from plr_jax import data
from plr_jax import experiment

flags.DEFINE_string('arch', 'arch1', 'arch1 or arch2.')
flags.DEFINE_string('strategy', 'ir', '"ir" or fractions per level, e.g. '
                    '0.3,0.7 (ARCH1) or 0.5,0.3,0.2 (ARCH2).')
flags.DEFINE_string('extractor_dir', None, 'Pretrained extractor checkpoint '
                    '(default WORKDIR/extractor; pretrained there if absent).')
flags.DEFINE_integer('pretrain_epochs', None, "Default: the preset's (100).")
flags.DEFINE_bool('mfid', True, 'Compute mFID of each seed\'s generator.')
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
    cifar100 = data.load('cifar100', FLAGS.data_dir)
    extractor, meta = experiment.get_extractor(
        arch, common.extractor_dir(FLAGS.extractor_dir, workdir),
        FLAGS.data_dir, FLAGS.pretrain_epochs or preset.pretrain_epochs,
        seed=0)
    experiment.run_continual(
        'split_cifar100', arch, strategy, cifar100, extractor, meta,
        num_tasks=10, preset=preset, seeds=seeds, workdir=workdir,
        iters_per_task=iters, compute_mfid=FLAGS.mfid, data_label=label,
        flags=common.flag_values())
  experiment.main_guard(run)


if __name__ == '__main__':
  app.run(main)
