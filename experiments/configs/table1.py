"""Table 1: split CIFAR-10, 2 tasks, buffer replay of 512 stored samples."""

from experiments.configs import presets
from plr_jax import config as config_lib
from plr_jax import errors

TITLE = 'Table 1: split CIFAR-10, buffer replay'
# (arch, strategy): (accuracy, SEM), the paper's Table 1.
PAPER = {
    ('arch1', 'ir'): (0.712, 0.007),
    ('arch1', '0.7,0.3'): (0.711, 0.007),
    ('arch1', '0.5,0.5'): (0.710, 0.008),
    ('arch1', '0.3,0.7'): (0.706, 0.010),
    ('arch2', 'ir'): (0.702, 0.007),
    ('arch2', '0.5,0.3,0.2'): (0.699, 0.006),
    ('arch2', '0.34,0.33,0.33'): (0.693, 0.007),
    ('arch2', '0.2,0.3,0.5'): (0.692, 0.008),
}
ARCHS = ('arch1', 'arch2')


# The replay kinds a Table 1 row may use: the paper's buffer, or none (the
# lower bound: fine-tuning on each task alone).
REPLAYS = ('buffer', 'none')


def config(arch: str = 'arch1', strategy='ir', seeds=(0, 1, 2),
           preset: str = 'paper', replay_targets: str = 'soft',
           replay: str = 'buffer', **continual_options
           ) -> config_lib.RunConfig:
  """One row: the stored first-task samples' representations at every level
  are recomputed by the previous classifier and replayed with `strategy`;
  no generator. A 10-way head (one logit per class of the benchmark).
  `replay="none"` trains on each task alone (the strategy is ignored)."""
  if replay not in REPLAYS:
    raise errors.FieldError('replay', f'Table 1 replays a buffer or nothing: '
                            f'replay must be buffer or none, got {replay!r}')
  return presets.cifar_config(
      'split_cifar10', 'cifar10', arch, ARCHS, strategy, seeds, preset,
      num_classes=10, num_tasks=2, replay=replay,
      replay_targets=replay_targets, **continual_options)


def rows(preset: str = 'paper', seeds=(0, 1, 2)) -> list[presets.Row]:
  """The paper's eight rows, then each architecture's lower bound (no
  replay; not in the paper)."""
  out = []
  for (arch, strategy), (accuracy, sem) in PAPER.items():
    cfg = config(arch, strategy, seeds, preset)
    out.append(presets.Row(
        f'table1_{arch}_{presets.strategy_id(cfg.continual.strategy)}', cfg,
        accuracy, sem, None, 'paper, Table 1'))
  for arch in ARCHS:
    out.append(presets.Row(f'table1_{arch}_none',
                           config(arch, 'ir', seeds, preset, replay='none')))
  return out
