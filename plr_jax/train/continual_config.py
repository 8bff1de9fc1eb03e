"""`ContinualConfig`: everything the task loop needs to know about a run."""

import dataclasses

from plr_jax import errors
from plr_jax.models import arch as arch_lib
from plr_jax.train import class_order as class_order_lib
from plr_jax.train import replay_kinds
from plr_jax.train import steps
from plr_jax.train import strategy as strategy_lib


@dataclasses.dataclass(frozen=True)
class ContinualConfig:
  """A generative PLR run (docs/design.md, "Training")."""
  arch: arch_lib.ArchConfig
  strategy: strategy_lib.Strategy
  num_tasks: int
  iters_per_task: int = 5000
  batch_size: int = 256
  replay_size: int = 256
  learning_rate: float = 1e-4
  chunk_size: int = 500
  # The replay kind, a module of `train.replay_kinds`: generative, buffer,
  # images or none.
  replay: str = 'generative'
  buffer_size: int = 512
  inputs: str = 'features'
  extractor_trainable_until: int | None = None
  # Defaults follow the authors' code (see `steps.make_plr_step`,
  # `steps.make_gr_step` for what each option means).
  recon_levels: str = 'all'
  replay_targets: str = 'soft'
  targets_after_update: bool = True
  # With inputs="images": standardised per channel, or raw in [0, 1] (the
  # reference's Fashion-MNIST; GR's image VAE is then Bernoulli).
  standardise_images: bool = False
  # GR: the classifier trains on the image VAE's reconstructions.
  classifier_on_reconstructions: bool = True
  # Iterations unrolled per step of the task loop's scan (how it compiles,
  # not what it computes).
  scan_unroll: int = 1
  # Images with the extractor frozen: extract each task's rows once and run
  # the task on those features (`train.frozen_inputs`), rather than
  # convolving every batch; the same rows and level-0 values.
  cache_frozen_features: bool = True
  # Which class permutation defines the tasks (see `class_order`); the
  # dataset's name matters to the authors' rule.
  class_order_rule: str = 'authors'
  dataset: str | None = None

  # Fields that change how the loop executes, not what it computes.
  LOOP_FIELDS = ('chunk_size', 'scan_unroll', 'cache_frozen_features')

  def __post_init__(self):
    # Each check raises `errors.FieldError` naming its field, so a binary
    # names the flag of the same name.
    with errors.field('strategy'):
      strategy_lib.check_strategy(self.strategy, self.arch)
    with errors.field('class_order_rule'):
      class_order_lib.check_class_order_rule(self.class_order_rule)
    with errors.field('inputs'):
      steps.check_inputs(self.inputs)
    with errors.field('replay'):
      replay_kinds.get(self.replay).validate(self)
    with errors.field('recon_levels'):
      steps.generator_recon_levels(self.strategy, self.recon_levels)
    with errors.field('replay_targets'):
      steps.check_replay_targets(self.replay_targets)
    for name in ('num_tasks', 'iters_per_task', 'batch_size', 'replay_size',
                 'chunk_size', 'buffer_size', 'scan_unroll'):
      if getattr(self, name) < 1:
        raise errors.FieldError(
            name, f'{name} must be positive, got {getattr(self, name)}')
    if self.arch.num_classes % self.num_tasks:
      raise errors.FieldError(
          'num_tasks', f'{self.arch.num_classes} classes do not split into '
          f'{self.num_tasks} equal tasks')
