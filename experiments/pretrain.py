r"""Extractor pretraining on CIFAR-10 (or Fashion-MNIST); saves orbax.

  python -m experiments.pretrain --workdir=runs/extractor_arch1 \
      --data_dir=DATA --arch=arch1 --epochs=100

The checkpoint (WORKDIR/variables, WORKDIR/meta.json) is what the other
binaries take as --extractor_dir. --num_classes=K keeps the first K classes
of a permutation drawn from the first seed (Figure 4). The state is saved
after every epoch (WORKDIR/pretrain_state/): the same command resumes after
the last saved epoch, and a larger --epochs extends a finished pretraining.
"""

import dataclasses

from absl import flags
import jax

from experiments import common
from experiments.configs import presets
from plr_jax import config as config_lib
from plr_jax import prepare
from plr_jax.data import datasets

common.define_io_flags()
flags.DEFINE_string('arch', 'arch1', 'Architecture whose extractor to train '
                    '(arch1, arch2, fmnist, fmnist_scripts).')
flags.DEFINE_string('dataset', 'cifar10', 'cifar10 or fashion_mnist.')
flags.DEFINE_integer('num_classes', 10, 'Classes of the dataset to '
                     'pretrain on.')
flags.DEFINE_bool('augment', True, 'Random crop (4-pixel padding) and flip.')
flags.DEFINE_string('crop_padding', 'symmetric', 'How the crop pads: '
                    "symmetric (the border mirrored, as the reference's "
                    "torchvision padding_mode='symmetric') or zeros (the "
                    'mean colour).')
flags.DEFINE_enum('conv_backward', 'patches', ['patches', 'xla'],
                  "How the convolutions' gradients are computed: patches "
                  '(matmuls over 3x3 patches, the faster on CPUs) or xla '
                  "(XLA's transposed convolutions); equal to float rounding.")
flags.DEFINE_integer('epochs', None, "Default: the preset's (100).")
flags.adopt_module_key_flags(common)
FLAGS = flags.FLAGS

ARCHS = ('arch1', 'arch2', 'fmnist', 'fmnist_scripts')


def main():
  if FLAGS.arch not in ARCHS:
    raise common.FlagError(f'unknown --arch {FLAGS.arch!r}; choose one of '
                           f'{", ".join(ARCHS)}')
  if FLAGS.dataset not in ('cifar10', 'fashion_mnist'):
    raise common.FlagError(f'--dataset must be cifar10 or fashion_mnist, '
                           f'got {FLAGS.dataset!r}')
  preset = common.preset_config(presets.get_preset, FLAGS.preset)
  epochs = FLAGS.epochs or preset.pretrain_epochs
  if epochs < 1:
    raise common.FlagError(f'--epochs must be positive, got {epochs}')
  try:
    config = dataclasses.replace(preset.extractor(FLAGS.augment),
                                 epochs=epochs,
                                 crop_padding=FLAGS.crop_padding,
                                 conv_backward=FLAGS.conv_backward)
  except ValueError as e:
    raise common.FlagError(f'--crop_padding: {e}') from None
  if FLAGS.precision not in config_lib.PRECISIONS:
    raise common.FlagError(f'--precision: unknown name {FLAGS.precision!r}')
  arch = presets.sized_arch(FLAGS.arch, preset)
  seed = common.seeds()[0]
  workdir = common.workdir()
  prepare.check_writable(workdir)
  dataset = datasets.load(FLAGS.dataset, common.data_dir(FLAGS.dataset))
  try:
    subset = prepare.class_subset(dataset, FLAGS.num_classes, seed)
  except ValueError as e:
    raise common.FlagError(f'--num_classes: {e}') from None
  with jax.default_matmul_precision(FLAGS.precision):
    prepare.pretrain_extractor(arch, subset, workdir, config, seed,
                           should_stop=common.STOP)


if __name__ == '__main__':
  common.run_main(main)
