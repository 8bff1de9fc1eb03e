r"""Extractor pretraining on CIFAR-10 (DESIGN.md section 5); saves orbax.

  python -m experiments.pretrain --workdir=/tmp/plr/extractor_arch1 \
      --data_dir=DATA --arch=arch1 --num_classes=10 --augment

The checkpoint (WORKDIR/variables, WORKDIR/meta.json) is what the other
binaries take as --extractor_dir. --num_classes=K keeps the first K classes
of a seeded permutation of CIFAR-10 (Figure 4). The state is saved after
every epoch (WORKDIR/pretrain_state/): the same command resumes after the
last saved epoch, and a larger --epochs extends a finished pretraining.
"""

from absl import app
from absl import flags
from absl import logging

from experiments import common
from plr_jax.data import datasets as data
from plr_jax import experiment

flags.DEFINE_string('arch', 'arch1', 'Architecture whose extractor to train '
                    '(arch1, arch2, fmnist, fmnist_scripts).')
flags.DEFINE_integer('num_classes', 10, 'CIFAR-10 classes to pretrain on.')
flags.DEFINE_bool('augment', True, 'Random crop (4-pixel padding) and flip.')
flags.DEFINE_enum('crop_padding', 'symmetric', ['symmetric', 'zeros'],
                  "How the crop pads: symmetric (the border mirrored, as the "
                  "reference's torchvision padding_mode='symmetric') or "
                  "zeros (the mean colour).")
flags.DEFINE_integer('epochs', None, "Default: the preset's (100).")
flags.DEFINE_string('dataset', 'cifar10', 'cifar10 or fashion_mnist.')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax logs every read at INFO
  def run():
    arch = common.arch_preset(FLAGS.arch, ('arch1', 'arch2', 'fmnist',
                                    'fmnist_scripts'))
    seeds, preset = common.seeds(), common.preset()
    epochs = FLAGS.epochs or preset.pretrain_epochs
    if epochs < 1:
      raise ValueError(f'--epochs must be positive, got {epochs}')
    workdir = common.workdir()
    dataset = experiment.class_subset(data.load(FLAGS.dataset, FLAGS.data_dir),
                                      FLAGS.num_classes, seeds[0])
    experiment.pretrain_extractor(arch, dataset, workdir, epochs, seeds[0],
                                  augment=FLAGS.augment,
                                  crop_padding=FLAGS.crop_padding,
                                  batch_size=preset.batch_size)
  experiment.main_guard(run)


if __name__ == '__main__':
  app.run(main)
