"""Table 2: split CIFAR-100, 10 tasks, generative PLR against IR, with mFID."""

from experiments.configs import presets
from plr_jax import config as config_lib
from plr_jax import errors

TITLE = 'Table 2: split CIFAR-100, generative replay'
# (arch, strategy): (accuracy, SEM, mFID), the paper's Table 2.
PAPER = {
    ('arch1', 'ir'): (0.159, 0.007, 169),
    ('arch1', '0.7,0.3'): (0.199, 0.009, 142),
    ('arch1', '0.5,0.5'): (0.203, 0.009, 144),
    ('arch1', '0.3,0.7'): (0.201, 0.010, 140),
    ('arch2', 'ir'): (0.113, 0.008, 514),
    ('arch2', '0.5,0.3,0.2'): (0.145, 0.009, 869),
    ('arch2', '0.34,0.33,0.33'): (0.135, 0.007, 318),
    ('arch2', '0.2,0.3,0.5'): (0.134, 0.005, 329),
}
ARCHS = ('arch1', 'arch2')
# The replay kinds a Table 2 run may use.
REPLAYS = ('generative', 'none')


def config(arch: str = 'arch1', strategy='ir', seeds=(0, 1, 2),
           preset: str = 'paper', mfid: bool = True,
           recon_levels: str = 'all', replay_targets: str = 'soft',
           replay: str = 'generative', **continual_options
           ) -> config_lib.RunConfig:
  """One row: `strategy` ("ir", "0.3,0.7" or a tuple) on `arch`.

  Nine parameters: each a flag of `split_cifar100` with the same name.

  The reference's PLR scripts: distillation (`--distill`), every level
  reconstructed (`--latent`), 10 x 5000 iterations of 256 + 256.
  `replay="none"` trains on each task alone (the lower bound; no generator,
  so no mFID; the strategy is ignored).
  """
  if replay not in REPLAYS:
    raise errors.FieldError('replay', f'Table 2 replays generated features '
                            f'or nothing: replay must be generative or none, '
                            f'got {replay!r}')
  cfg = presets.cifar_config(
      'split_cifar100', 'cifar100', arch, ARCHS, strategy, seeds, preset,
      num_classes=100, num_tasks=10, replay=replay,
      recon_levels=recon_levels, replay_targets=replay_targets,
      **continual_options)
  mfid = mfid and replay == 'generative'
  return cfg.replace(mfid=presets.get_preset(preset).mfid if mfid else None)


def rows(preset: str = 'paper', seeds=(0, 1, 2)) -> list[presets.Row]:
  out = []
  for (arch, strategy), (accuracy, sem, mfid) in PAPER.items():
    cfg = config(arch, strategy, seeds, preset)
    out.append(presets.Row(
        f'table2_{arch}_{presets.strategy_id(cfg.continual.strategy)}', cfg,
        accuracy, sem, mfid, 'paper, Table 2'))
  return out
