r"""Fetches the official dataset files, checksums verified.

  python -m experiments.download --data_dir=DATA
  python -m experiments.download --data_dir=DATA --datasets=cifar100

CIFAR-10 and CIFAR-100 (the python archives, extracted to
DATA/cifar-10-batches-py/ and DATA/cifar-100-python/) and Fashion-MNIST
(DATA/fashion-mnist/). A dataset already there is skipped; an interrupted
download resumes when rerun; a file whose checksum differs is deleted and
named in one line (plr_jax/data/download.py). The binaries do the same for
what they need with --download.
"""

import sys

from absl import flags

from experiments import common
from plr_jax.data import download

flags.DEFINE_string('data_dir', None, 'Where to put the files.')
flags.DEFINE_list('datasets', ['cifar10', 'cifar100', 'fashion_mnist'],
                  'Which datasets.')
FLAGS = flags.FLAGS


def main():
  if not FLAGS.data_dir:
    raise common.FlagError('--data_dir is required')
  unknown = sorted(set(FLAGS.datasets) - set(download.SOURCES))
  if unknown:
    raise common.FlagError(f'--datasets: unknown {", ".join(unknown)}; '
                           f'choose among {", ".join(download.SOURCES)}')
  for name in FLAGS.datasets:
    written = download.download(
        name, FLAGS.data_dir, log=lambda line: print(line, file=sys.stderr))
    print(f'{name}: ' + (', '.join(written) if written else
                         f'already in {FLAGS.data_dir}'))


if __name__ == '__main__':
  common.run_main(main)
