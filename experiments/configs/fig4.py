"""Figure 4: Internal Replay on split CIFAR-100 against the extractor's
pretraining: the number of CIFAR-10 classes it saw, with or without
augmentation (0 classes: no pretraining, a random frozen extractor)."""

import dataclasses

from experiments.configs import presets
from experiments.configs import table2
from plr_jax import config as config_lib

TITLE = 'Figure 4: IR on split CIFAR-100 against pretraining'
CLASS_COUNTS = (0, 2, 4, 6, 8, 10)


def config(classes: int = 10, augment: bool = True, arch: str = 'arch1',
           seeds=(0, 1, 2), preset: str = 'paper') -> config_lib.RunConfig:
  """IR on split CIFAR-100 with an extractor pretrained on `classes`
  CIFAR-10 classes."""
  base = table2.config(arch, 'ir', seeds, preset, mfid=False)
  run_preset = presets.get_preset(preset)
  return dataclasses.replace(
      base, extractor=run_preset.extractor(augment), extractor_classes=classes,
      name=f'IR, extractor on {classes} CIFAR-10 classes'
      + (', augmented' if augment and classes else ''))


def rows(preset: str = 'paper', seeds=(0, 1, 2), arch: str = 'arch1',
         class_counts=CLASS_COUNTS, augment=(True, False)
         ) -> list[presets.Row]:
  out = []
  for count in class_counts:
    for aug in (augment if count else (False,)):
      out.append(presets.Row(f'fig4_{arch}_k{count}_aug{int(aug)}',
                           config(count, aug, arch, seeds, preset)))
  return out
