r"""Writes a finished extractor in the portable form that is committed.

  python -m experiments.export_extractor \
      --source=RUNS/table1/extractor_arch1_7ef95987 \
      --dest=reported/extractors/arch1_cifar10_100ep \
      --command='python -m experiments.pretrain --arch=arch1 ...' \
      --code=b1b14fa --data_dir=DATA

DEST gets `extractor.npz` (the extractor's parameters and batch statistics,
plain arrays) and `meta.json`: the source's (architecture, epochs, crop
padding, seed, test accuracy, data label, wall time) plus the command, the
code commit, the machine and, with --data_dir, the data's fingerprint. Every
binary that takes --extractor_dir reads DEST; loading checks the arrays
against the fingerprint in meta.json.
"""

import datetime
import os

from absl import flags

from experiments import common
from plr_jax.data import datasets
from plr_jax.io import extractors
from plr_jax.io import machine

flags.DEFINE_string('source', None, 'A finished extractor directory (made '
                    'by experiments.pretrain or a run that pretrained one).')
flags.DEFINE_string('dest', None, 'Where to write the portable extractor.')
flags.DEFINE_string('command', None, 'The command that made the extractor '
                    '(default: the one its meta.json records).')
flags.DEFINE_string('code', None, 'The code commit that made it (default: '
                    'the one its meta.json records).')
flags.DEFINE_string('machine', None, 'The machine it ran on (default: the '
                    'one its meta.json records, else this one).')
flags.DEFINE_string('data_dir', None, 'The data it was trained on: records '
                    "the data's fingerprint and checks its label.")
FLAGS = flags.FLAGS


def main():
  for name in ('source', 'dest'):
    if not getattr(FLAGS, name):
      raise common.FlagError(f'--{name} is required')
  try:
    arch, variables, meta = extractors.load_any_extractor(FLAGS.source)
  except extractors.CheckpointError as e:
    raise common.FlagError(f'--source: {e}') from None
  meta_path = os.path.join(FLAGS.source, 'meta.json')
  made = meta.get('provenance', {})
  meta = {k: v for k, v in meta.items()
          if k not in ('extractor', 'fingerprint', 'provenance')}
  for name in ('command', 'code'):
    meta[name] = getattr(FLAGS, name) or made.get(name)
    if not meta[name]:
      raise common.FlagError(f'--{name} is required: {FLAGS.source} does '
                             'not record it')
  meta['machine'] = FLAGS.machine or made.get('machine') or machine.describe()
  # When it was written: its provenance, else its meta.json's time.
  meta['date'] = made.get('date') or datetime.datetime.fromtimestamp(
      os.path.getmtime(meta_path), datetime.timezone.utc).isoformat(
          timespec='seconds')
  if FLAGS.data_dir:
    dataset = datasets.load(meta.get('dataset', 'cifar10'), FLAGS.data_dir)
    if dataset.label != meta.get('data'):
      raise common.FlagError(
          f'--data_dir: its {dataset.name} is labelled {dataset.label!r}, '
          f'the extractor was trained on {meta.get("data")!r} data')
    meta['data_fingerprint'] = dataset.fingerprint()
  fp = extractors.export_extractor(FLAGS.dest, arch, variables, meta)
  print(f'wrote {FLAGS.dest} (extractor {fp}, {meta["arch"]}, '
        f'{meta.get("epochs")} epochs, test accuracy '
        f'{100 * meta.get("test_accuracy", float("nan")):.1f}%)')


if __name__ == '__main__':
  common.run_main(main)
