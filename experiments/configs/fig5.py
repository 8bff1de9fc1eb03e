"""Figure 5: Fashion-MNIST, 5 tasks of 2 classes, without pretraining.

Setups (the classifier's extractor trains on the images of task 1):
  gr:        standard generative replay of images (an image VAE; replayed
             images run through the whole classifier, which trains on the
             VAE's reconstructions of the current batch, as the authors');
  ir_frozen: Internal Replay (or a PLR strategy) with the extractor frozen
             after task 1;
  gr_frozen: GR with the classifier's extractor and the VAE's convolutional
             encoder and decoder frozen after task 1;
  ir_naive:  Internal Replay with nothing frozen (expected to fail badly);
  none:      no replay, fine-tuning on each task alone (the lower bound).

Sizes: "paper" is the paper's text (the 3 x 50 `fmnist` network, batch
256 + 256), "authors" the authors' README command (`fmnist_scripts`: one
hidden layer of 100 units; batch 128 + 128; hard replay targets), both with
the authors' 2000 iterations per task; "tiny" for tests.
"""

import dataclasses

from experiments.configs import presets
from plr_jax import config as config_lib
from plr_jax import errors
from plr_jax.train import continual

TITLE = 'Figure 5: Fashion-MNIST without pretraining'
# setup: (replay, freeze the convolutional parts after this task).
SETUPS = {'gr': ('images', None), 'ir_frozen': ('generative', 1),
          'gr_frozen': ('images', 1), 'ir_naive': ('generative', None),
          'none': ('none', None)}
# How results.md and the plots call each setup.
SETUP_NAMES = {'gr': 'GR (replay of images)',
               'ir_frozen': '{strategy}, encoder frozen after task 1',
               'gr_frozen': 'GR, convolutions frozen after task 1',
               'ir_naive': 'Internal Replay, naive (nothing frozen)',
               'none': 'No replay (fine-tuning, the lower bound)'}
ARCHS = ('fmnist', 'fmnist_scripts', 'fmnist_mlp')
# The authors' Fashion-MNIST scripts ran 2000 iterations per task; their
# README command: --batch 128 (the replay batch the same).
ITERS_PER_TASK = 2000
AUTHORS = dataclasses.replace(presets.PRESETS['paper'], name='authors',
                              iters_per_task=ITERS_PER_TASK, batch_size=128,
                              replay_size=128)
PRESET_ARCH = {'paper': 'fmnist', 'authors': 'fmnist_scripts', 'tiny': 'fmnist'}
# The authors' README: "Should give about 76 % acc" for their GR command.
AUTHORS_GR = 0.76


def get_preset(name: str) -> presets.Preset:
  if name == 'authors':
    return AUTHORS
  if name not in presets.PRESETS:
    raise errors.FieldError('preset', f'unknown preset {name!r}; choose one '
                            'of paper, authors, tiny')
  run_preset = presets.get_preset(name)
  if name == 'paper':
    return dataclasses.replace(run_preset, iters_per_task=ITERS_PER_TASK)
  return run_preset


def config(setup: str = 'ir_frozen', strategy='ir', seeds=(0, 1, 2),
           preset: str = 'paper', arch: str | None = None, num_tasks: int = 5,
           replay_targets: str | None = None, recon_levels: str | None = None,
           pixels: str = 'raw', **continual_options
           ) -> config_lib.RunConfig:
  """One run of `setup`.

  Ten parameters: each a flag of `fashion_mnist` with the same name.

  Args:
    setup: one of `SETUPS`.
    strategy: "ir", "0.2,0.3,0.5" or a tuple (ir_frozen only).
    seeds: the runs' seeds.
    preset: "paper", "authors" or "tiny".
    arch: `ARCHS` (default: fmnist_scripts for "authors", fmnist otherwise).
    num_tasks: tasks the 10 classes split into.
    replay_targets: "soft" or "hard"; None: hard for "authors" and for image
      replay (the authors' only Fashion-MNIST command has no --distill),
      soft otherwise (their PLR runs distil).
    recon_levels: the generator's levels (see `train.steps`); None:
      "only_last_layer" for generative replay on a network with hidden
      levels (measured: with "all" the VAE fits the large hidden activations
      and its prior samples lose their class; docs/deviations.md), "all"
      otherwise (one level: the two modes are the same computation).
    pixels: "raw" in [0, 1] (the reference) or "standardised".
  """
  if setup not in SETUPS:
    raise errors.FieldError('setup', f'unknown setup {setup!r}; choose one '
                            f'of {", ".join(SETUPS)}')
  run_preset = get_preset(preset)
  arch = arch or PRESET_ARCH[preset]
  if arch not in ARCHS:
    raise errors.FieldError('arch', f'unknown arch {arch!r}; choose one of '
                            f'{", ".join(ARCHS)}')
  network = presets.sized_arch(arch, run_preset)
  strategy_text, strategy = strategy, presets.strategy_of(strategy, network)
  replay, frozen_after = SETUPS[setup]
  if frozen_after is not None and not network.conv_channels:
    raise errors.FieldError('arch', f'arch {arch} has no convolutions to '
                            f'freeze; {setup} needs fmnist or fmnist_scripts')
  if setup != 'ir_frozen' and strategy[0] != 1.0:
    raise errors.FieldError('strategy', f'a strategy applies to ir_frozen; '
                            f'{setup} replays at one level')
  if pixels not in ('raw', 'standardised'):
    raise errors.FieldError('pixels', f'pixels must be raw or standardised, '
                            f'got {pixels!r}')
  if replay_targets is None:
    replay_targets = ('hard' if preset == 'authors' or replay == 'images'
                      else 'soft')
  if recon_levels is None:
    recon_levels = ('only_last_layer' if replay == 'generative'
                    and network.num_levels > 1 else 'all')
  return config_lib.RunConfig(
      protocol='fashion_mnist',
      continual=continual.ContinualConfig(
          arch=network, strategy=tuple(strategy), num_tasks=num_tasks,
          iters_per_task=run_preset.iters_per_task,
          batch_size=run_preset.batch_size, replay_size=run_preset.replay_size,
          chunk_size=run_preset.chunk_size, buffer_size=run_preset.buffer_size,
          replay=replay, inputs='images',
          extractor_trainable_until=frozen_after, recon_levels=recon_levels,
          replay_targets=replay_targets,
          standardise_images=pixels == 'standardised',
          dataset='fashion_mnist', **continual_options),
      seeds=tuple(seeds),
      name=SETUP_NAMES[setup].format(
          strategy=presets.rule_of(strategy_text)
          or results_name(tuple(strategy))))


def results_name(strategy) -> str:
  from plr_jax.eval import results  # pylint: disable=g-import-not-at-top
  return results.strategy_name(strategy)


def rows(preset: str = 'authors', seeds=(0, 1, 2)) -> list[presets.Row]:
  """The four setups on the authors' setup, the authors' GR command, and
  PLR strategies against IR on the paper's 3 x 50 network."""
  authors = 'authors' if preset == 'paper' else preset
  paper = preset
  out = [presets.Row('fig5_gr_authors_command',
                   config('gr', seeds=(0,), preset=authors), AUTHORS_GR, None,
                   None, "the authors' README")]
  for setup in SETUPS:
    out.append(presets.Row(f'fig5_{setup}_authors_setup',
                         config(setup, seeds=seeds, preset=authors)))
  for mode in ('all', 'only_last_layer'):
    out.append(presets.Row(f'fig5_plr_ir_{mode}',
                         config('ir_frozen', 'ir', seeds, paper,
                                recon_levels=mode)))
  for strategy in ('0.2,0.3,0.5', '0.5,0.3,0.2'):
    for mode in ('all', 'only_last_layer'):
      out.append(presets.Row(
          f'fig5_plr_{strategy.replace(",", "_")}_{mode}',
          config('ir_frozen', strategy, seeds, paper, recon_levels=mode)))
  return out
