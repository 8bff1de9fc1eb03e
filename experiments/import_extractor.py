r"""Imports the reference's pretrained convolutional extractor (PyTorch).

  python -m experiments.import_extractor \
      --checkpoint=C3-5x16-bn-cifar10_pretrained --arch=arch1 \
      --dest=runs/extractors/bir_cifar10

reads a `torch.save` file (the legacy format or the current zip format)
without importing torch: only ordered dicts, tensors and storages are
accepted, and a file naming anything else is refused in one line with
nothing run (plr_jax/io/torch_state.py). The reference's `ConvLayers` names
(`convLayer{i}.conv.weight`, `.bn.running_mean`, ...) are mapped onto our
extractor, checked against --arch's shapes, and written in the portable form
(`extractor.npz`, `meta.json`) that every binary takes as --extractor_dir.

The authors' repository ships BI-R's CIFAR-10 extractor as
`store/models/C3-5x16-bn-cifar10_pretrained` (the ARCH1 and ARCH2
extractor); take it from there, and do not commit it. BI-R trained it on
images normalised with CIFAR-10's channel statistics; our runs normalise with
the run's data's own statistics (docs/experiments.md says how close they
are).
"""

import hashlib
import os

from absl import flags
import numpy as np

from experiments import common
from plr_jax.io import extractors
from plr_jax.io import extractor_file
from plr_jax.io import torch_state
from plr_jax.models import arch as arch_lib

flags.DEFINE_string('checkpoint', None, 'The torch.save file.')
flags.DEFINE_string('dest', None, 'Where to write the extractor.')
flags.DEFINE_string('arch', 'arch1', 'Architecture whose extractor it is '
                    '(arch1 and arch2 share theirs).')
flags.DEFINE_integer('classes', 10, 'How many CIFAR-10 classes it was '
                     'pretrained on (runs check this against theirs).')
flags.DEFINE_string('prefix', None, 'What precedes convLayer1 in the '
                    'names (default: found).')
FLAGS = flags.FLAGS


def main():
  for name in ('checkpoint', 'dest'):
    if not getattr(FLAGS, name):
      raise common.FlagError(f'--{name} is required')
  try:
    arch = arch_lib.get_arch(FLAGS.arch)
  except ValueError as e:
    raise common.FlagError(f'--arch: {e}') from None
  try:
    state = torch_state.state_dict(torch_state.load(FLAGS.checkpoint))
    extractor = torch_state.conv_extractor(
        state, len(arch.conv_channels), arch.conv_batch_norm, FLAGS.prefix)
  except torch_state.TorchFileError as e:
    raise common.FlagError(f'--checkpoint: {FLAGS.checkpoint}: {e}') from None
  try:
    extractor_file.check_tree(extractor, extractors.extractor_target(arch),
                              FLAGS.checkpoint)
  except extractor_file.ExtractorFileError as e:
    raise common.FlagError(f'--arch: {e}') from None
  with open(FLAGS.checkpoint, 'rb') as fh:
    digest = hashlib.sha256(fh.read()).hexdigest()
  tracked = [int(v) for k, v in state.items()
             if k.endswith('num_batches_tracked')]
  meta = {'arch': arch.name, 'dataset': 'cifar10', 'data': 'exact',
          'classes': list(range(FLAGS.classes)), 'imported': True,
          'source': os.path.basename(FLAGS.checkpoint),
          'source_sha256': digest,
          'batches_trained': max(tracked) if tracked else None,
          'input_normalisation': 'CIFAR-10 channel mean and std (BI-R)'}
  fp = extractors.export_extractor(
      FLAGS.dest, arch,
      {'params': {'extractor': extractor['params']},
       'batch_stats': {'extractor': extractor['batch_stats']}}, meta)
  extractors.load_extractor(FLAGS.dest, arch)
  count = sum(np.size(v) for v in state.values())
  print(f'wrote {FLAGS.dest}: {arch.name} extractor {fp} from '
        f'{FLAGS.checkpoint} ({count} values, sha256 {digest[:12]})')


if __name__ == '__main__':
  common.run_main(main)
