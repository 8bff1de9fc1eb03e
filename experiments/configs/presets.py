"""Sizes and lengths shared by the presets, and a table row."""

import dataclasses

from plr_jax import config as config_lib
from plr_jax import errors
from plr_jax.models import arch as arch_lib
from plr_jax.train import continual
from plr_jax.train import pretrain
from plr_jax.train import strategy as strategy_lib


@dataclasses.dataclass(frozen=True)
class Preset:
  """Run lengths and sizes: the paper's, or a tiny one for tests and laptops.

  Attributes:
    name: "paper" or "tiny".
    iters_per_task, batch_size, replay_size: the continual phase.
    buffer_size: stored samples of buffer replay (Table 1).
    chunk_size: iterations per compiled chunk of the task loop.
    pretrain_epochs: epochs of an extractor pretrained by the run.
    mfid: the mFID settings.
    shrink: shrink the networks (same number of levels, see `shrink`).
  """
  name: str
  iters_per_task: int
  batch_size: int
  replay_size: int
  buffer_size: int
  chunk_size: int
  pretrain_epochs: int
  mfid: config_lib.MfidConfig
  shrink: bool

  def extractor(self, augment: bool = True) -> pretrain.PretrainConfig:
    """How a run pretrains a missing extractor (docs/design.md, "Extractor pretraining")."""
    return pretrain.PretrainConfig(epochs=self.pretrain_epochs,
                                   augment=augment)


PRESETS = {
    'paper': Preset('paper', iters_per_task=5000, batch_size=256,
                  replay_size=256, buffer_size=512, chunk_size=500,
                  pretrain_epochs=100, mfid=config_lib.MfidConfig(10_000, 20),
                  shrink=False),
    'tiny': Preset('tiny', iters_per_task=20, batch_size=32, replay_size=32,
                 buffer_size=64, chunk_size=10, pretrain_epochs=1,
                 mfid=config_lib.MfidConfig(256, 1), shrink=True),
}


def get_preset(name: str) -> Preset:
  if name not in PRESETS:
    raise errors.FieldError('preset', f'unknown preset {name!r}; choose one of '
                     f'{", ".join(PRESETS)}')
  return PRESETS[name]


def shrink(arch: arch_lib.ArchConfig) -> arch_lib.ArchConfig:
  """A small network with the same image preset, levels and classes."""
  return dataclasses.replace(
      arch, conv_channels=(4,) * len(arch.conv_channels),
      hidden=(24,) * arch.num_levels, z_dim=4)


def sized_arch(name: str, preset: Preset, num_classes: int | None = None
               ) -> arch_lib.ArchConfig:
  arch = arch_lib.get_arch(name)
  if preset.shrink:
    arch = shrink(arch)
  if num_classes is not None and num_classes != arch.num_classes:
    arch = arch_lib.with_classes(arch, num_classes)
  return arch


@dataclasses.dataclass(frozen=True)
class Row:
  """One row of a table: its run, and the paper's number beside it.

  Attributes:
    run_id: the row's name, also its directory.
    config: the row's run.
    paper: the paper's (or the authors') accuracy in [0, 1], or None.
    paper_sem: its standard error, or None.
    paper_mfid: the paper's mFID, or None.
    source: where `paper` comes from ("paper, Table 1", ...).
  """
  run_id: str
  config: config_lib.RunConfig
  paper: float | None = None
  paper_sem: float | None = None
  paper_mfid: float | None = None
  source: str = ''


def strategy_id(strategy) -> str:
  """`ir` or the fractions joined by underscores, for run ids."""
  if strategy[0] == 1.0:
    return 'ir'
  return '_'.join(f'{f:g}' for f in strategy)


def strategy_of(strategy, network: arch_lib.ArchConfig) -> tuple:
  """A strategy ("ir", "0.3,0.7", a rule of `strategy.NAMED` such as
  "cumulative_weights", or a tuple) checked for `network`; a bad one raises
  `FieldError('strategy', ...)`."""
  try:
    if isinstance(strategy, str):
      return tuple(strategy_lib.parse_strategy(strategy, arch=network))
    return tuple(strategy)  # checked by ContinualConfig
  except ValueError as e:
    raise errors.FieldError('strategy', str(e)) from None


def rule_of(strategy) -> str | None:
  """The rule's name when `strategy` names one (`strategy.NAMED`), else
  None: what results call such a run."""
  if isinstance(strategy, str) and strategy.strip().lower() in (
      strategy_lib.NAMED):
    return strategy.strip().lower()
  return None


def cifar_config(protocol: str, dataset: str, arch: str, archs, strategy,
                 seeds, preset: str, num_classes: int, num_tasks: int,
                 **continual_options) -> config_lib.RunConfig:
  """A run on a frozen pretrained extractor's features (Tables 1 and 2;
  ten parameters: what the two tables differ in, then the row's choices and
  `ContinualConfig` options passed through):
  `arch` (one of `archs`) with a `num_classes`-way head, `strategy` ("ir",
  "0.3,0.7" or a tuple), the preset's sizes and lengths."""
  if arch not in archs:
    raise errors.FieldError('arch', f'unknown arch {arch!r}; choose one of '
                     f'{", ".join(archs)}')
  run_preset = get_preset(preset)
  network = sized_arch(arch, run_preset, num_classes=num_classes)
  strategy_text, strategy = strategy, strategy_of(strategy, network)
  return config_lib.RunConfig(
      protocol=protocol,
      continual=continual.ContinualConfig(
          arch=network, strategy=tuple(strategy), num_tasks=num_tasks,
          iters_per_task=run_preset.iters_per_task,
          batch_size=run_preset.batch_size, replay_size=run_preset.replay_size,
          chunk_size=run_preset.chunk_size, buffer_size=run_preset.buffer_size,
          inputs='features', dataset=dataset, **continual_options),
      seeds=tuple(seeds), extractor=run_preset.extractor(),
      name=rule_of(strategy_text))
