"""Pure, jit-compiled PLR train steps built by factories, and the public
step API.

Each factory closes over what fixes the shapes (architecture, strategy, batch
sizes) and returns `step(state, ...) -> (state, metrics)`. The task number and
the class masks are array arguments (`TaskInfo`); the task's `Phase` (task 1
without replay; replaying; replaying with frozen layers) is static, so a step
compiles once per phase and computes only what its phase needs: task 1 traces
no replay, frozen layers get no gradient. A step runs inside `lax.scan` over
iterations and under `vmap` over seeds.

The iterations of the paper's protocols, composed from the two networks'
steps, each `step(state, batch, info)`: `make_plr_step` (generative PLR),
`make_gr_step` (generative replay of images, Figure 5) and
`make_buffer_step` (stored features in `info.memory`, Table 1). Which one a
run takes is its replay kind's choice (`train.replay_kinds`). The
pieces live in `train.state` (states, `TaskInfo`, `end_task`),
`train.classifier_step` and `train.generator_step`; their names are
re-exported here, so `steps.X` is the one place to import from.
"""

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from plr_jax.models import arch as arch_lib
from plr_jax.models import classifier as classifier_lib
from plr_jax.models import generator as generator_lib
from plr_jax.models import image_generator
from plr_jax.train import losses
from plr_jax.train import replay as replay_lib
from plr_jax.train import strategy as strategy_lib
# The public step API (re-exported).
from plr_jax.train.classifier_step import INPUTS
from plr_jax.train.classifier_step import REPLAY_TARGETS
from plr_jax.train.classifier_step import check_inputs
from plr_jax.train.classifier_step import check_replay_targets
from plr_jax.train.classifier_step import classifier_gates
from plr_jax.train.classifier_step import make_classifier_step
from plr_jax.train.generator_step import RECON_LEVELS
from plr_jax.train.generator_step import generator_recon_levels
from plr_jax.train.generator_step import make_generator_step
from plr_jax.train.state import Batch
from plr_jax.train.state import Metrics
from plr_jax.train.state import Phase
from plr_jax.train.state import PLRState
from plr_jax.train.state import TaskInfo
from plr_jax.train.state import TrainState
from plr_jax.train.state import copy_tree
from plr_jax.train.state import end_task
from plr_jax.train.state import replays_in_one_pass
from plr_jax.train.state import task_info
from plr_jax.train.state import when_replaying

__all__ = [
    'Batch', 'INPUTS', 'Metrics', 'PLRState', 'Phase', 'RECON_LEVELS',
    'REPLAY_TARGETS', 'TaskInfo', 'TrainState', 'check_inputs',
    'check_replay_targets', 'classifier_gates',
    'copy_tree', 'end_task', 'generator_recon_levels', 'make_buffer_step',
    'make_classifier_step', 'make_generator_step', 'make_gr_step',
    'make_plr_step', 'replays_in_one_pass', 'task_info', 'when_replaying',
]

Classifier = classifier_lib.Classifier


def make_plr_step(
    arch: arch_lib.ArchConfig, strategy: strategy_lib.Strategy,
    replay_size: int, classifier_tx: optax.GradientTransformation,
    generator_tx: optax.GradientTransformation, *, inputs: str = 'features',
    extractor_trainable_until: int | None = None,
    recon_levels: str = 'all', replay_targets: str = 'soft',
    targets_after_update: bool = True,
    shard: Callable[[Any], Any] | None = None, jit: bool = True,
) -> Callable[[PLRState, Batch, TaskInfo], tuple[PLRState, Metrics]]:
  """One generative PLR iteration: sample replay, update both networks.

  Twelve parameters: what fixes the step's shapes and its two optimizers,
  then keyword-only switches (the reference's command-line options and our
  variants), each defaulting to the reference's behaviour.

  The replay batch comes from the previous generator and is labelled by the
  previous classifier (skipped in task 1). The classifier is updated first;
  the generator's reconstruction targets for current data are then the
  classifier's features after that update (as the reference computes them,
  under `no_grad`, after the classifier's step of the same iteration).

  Args:
    arch, strategy, replay_size: as for `make_classifier_step`.
    classifier_tx, generator_tx: the two optimizers.
    inputs: `"features"` (cached level-0 features, frozen extractor) or
      `"images"` (the classifier's extractor runs, and is trained, on the
      current images; the generator works on its level-0 output). Images
      need an extractor without batch norm.
    extractor_trainable_until: with images, the extractor is trained up to
      and including this task and frozen after it (None: never frozen).
    recon_levels: which levels the generator reconstructs, for current and
      replayed data: `"all"`, `"only_last_layer"` (the reference's modes),
      `"used"`, `"classifier"` (ours); see `generator_recon_levels`.
    replay_targets: `"soft"` or `"hard"` (see `make_classifier_step`); the
      generator's replay prior follows the same choice.
    targets_after_update: False takes the generator's targets from the
      classifier before this iteration's update (one pass fewer to wait for;
      not the reference's order).
    shard: applied to the replay batch (e.g. `sharding.constrain_batch`, to
      split it over devices); None leaves placement to XLA.
    jit: return the step jit-compiled, state donated.
  """
  shard = shard or (lambda tree: tree)
  if inputs == 'images' and arch.conv_batch_norm:
    raise ValueError(f'{arch.name}: training on images is supported for '
                     'extractors without batch norm only')
  classifier_step = make_classifier_step(arch, classifier_tx, strategy,
                                         replay_size, inputs=inputs,
                                         replay_targets=replay_targets, jit=False)
  current_levels, replay_levels = generator_recon_levels(strategy,
                                                         recon_levels)
  generator_step = make_generator_step(
      arch, generator_tx, current_levels=current_levels,
      replay_levels=replay_levels, replay_targets=replay_targets, jit=False)
  model = Classifier(arch)

  def step(state: PLRState, batch: Batch, info: TaskInfo):
    key = jax.random.fold_in(state.key, state.step)
    replay_key, generator_key = jax.random.split(key)
    replay = when_replaying(
        info,
        lambda: replay_lib.generative(
            arch, state.prev_generator, state.prev_classifier, replay_key,
            info.replayed, replay_size,
            hidden_from_classifier=recon_levels == 'classifier'),
        lambda: replay_lib.empty(arch, replay_size, batch.x.dtype))
    replay = shard(replay)
    trainable = None
    if inputs == 'images' and extractor_trainable_until is not None:
      trainable = {'extractor': not info.phase.frozen}
    classifier, classifier_metrics = classifier_step(
        state.classifier, batch, replay, info, trainable)
    params = (classifier if targets_after_update
              else state.classifier).params
    features = batch.x
    if inputs == 'images':
      features = model.apply({'params': params}, batch.x,
                             method=Classifier.extract)
    _, levels = model.apply({'params': params}, features,
                            method=Classifier.levels)
    levels = jax.lax.stop_gradient(levels)
    generator, generator_metrics = generator_step(
        state.generator, levels, batch.y, replay, info, generator_key)
    metrics = {f'classifier/{k}': v for k, v in classifier_metrics.items()}
    metrics.update({f'generator/{k}': v for k, v in generator_metrics.items()})
    state = state.replace(classifier=classifier, generator=generator,
                          step=state.step + 1)
    return state, metrics

  return jax.jit(step, donate_argnums=0) if jit else step


def make_gr_step(
    arch: arch_lib.ArchConfig, replay_size: int,
    classifier_tx: optax.GradientTransformation,
    generator_tx: optax.GradientTransformation, *,
    frozen_after: int | None = None, replay_targets: str = 'hard',
    bernoulli: bool = True, classifier_on_reconstructions: bool = True,
    shard: Callable[[Any], Any] | None = None, jit: bool = True,
) -> Callable[[PLRState, Batch, TaskInfo], tuple[PLRState, Metrics]]:
  """Standard generative replay of images (Figure 5's GR baselines), as the
  reference's `train.py` runs it. Ten parameters: what fixes the step's
  shapes and its two optimizers, then keyword-only switches, each
  defaulting to the reference's behaviour.

  The previous `ImageGenerator` samples images of earlier classes and the
  previous classifier labels them (`replay_targets`: its argmax among the
  earlier classes, the reference's default, or its softened logits); they
  run through the whole classifier. With `classifier_on_reconstructions`
  (the reference) the classifier trains on the current generator's
  reconstructions of the current batch (constants for autodiff), not on the
  real images; it is evaluated on real images. The generator then trains on
  the real images. With `frozen_after=K` the classifier's extractor and the
  generator's convolutional encoder and decoder are frozen after task K
  (`gr_frozen`). `bernoulli`: pixels in [0, 1], binary cross-entropy (see
  `ImageGenerator`).
  """
  shard = shard or (lambda tree: tree)
  generator = image_generator.ImageGenerator(arch, bernoulli=bernoulli)
  ir = strategy_lib.internal_replay(arch.num_levels)
  classifier_step = make_classifier_step(
      arch, classifier_tx, ir, replay_size, inputs='images',
      replay_images=True, replay_targets=replay_targets, jit=False)
  generator_step = make_generator_step(
      arch, generator_tx, model=generator,
      recon_loss=(losses.bernoulli_reconstruction if bernoulli
                  else losses.reconstruction),
      replay_targets=replay_targets, jit=False)
  model = Classifier(arch)

  def sample(state, key, info):
    _, (images,) = generator.apply(
        {'params': state.prev_generator}, key, info.replayed, replay_size,
        method=image_generator.ImageGenerator.sample)
    logits = model.apply({'params': state.prev_classifier}, images)
    return replay_lib.ReplayBatch(levels=(jax.lax.stop_gradient(images),),
                                  logits=jax.lax.stop_gradient(logits))

  def reconstructions(params, images, key):
    _, _, _, (raw,) = generator.apply(
        {'params': params}, images,
        generator_lib.latent_noise(arch, key, images),
        method=image_generator.ImageGenerator.reconstruct)
    return jax.lax.stop_gradient(image_generator.to_images(raw, bernoulli))

  def step(state: PLRState, batch: Batch, info: TaskInfo):
    key = jax.random.fold_in(state.key, state.step)
    replay_key, generator_key, recon_key = jax.random.split(key, 3)
    empty = replay_lib.ReplayBatch(
        levels=(jnp.zeros((replay_size,) + batch.x.shape[1:], batch.x.dtype),),
        logits=jnp.zeros((replay_size, arch.num_classes), batch.x.dtype))
    replay = when_replaying(info, lambda: sample(state, replay_key, info),
                            lambda: empty)
    replay = shard(replay)
    classifier_trainable = generator_trainable = None
    if frozen_after is not None:
      open_gate = not info.phase.frozen
      classifier_trainable = {'extractor': open_gate}
      generator_trainable = {'conv_encoder': open_gate,
                             'conv_decoder': open_gate}
    classifier_batch = batch
    if classifier_on_reconstructions:
      classifier_batch = batch.replace(x=reconstructions(
          state.generator.params, batch.x, recon_key))
    classifier, classifier_metrics = classifier_step(
        state.classifier, classifier_batch, replay, info,
        classifier_trainable)
    generator_state, generator_metrics = generator_step(
        state.generator, (batch.x,), batch.y, replay, info, generator_key,
        generator_trainable)
    metrics = {f'classifier/{k}': v for k, v in classifier_metrics.items()}
    metrics.update({f'generator/{k}': v for k, v in generator_metrics.items()})
    return state.replace(classifier=classifier, generator=generator_state,
                         step=state.step + 1), metrics

  return jax.jit(step, donate_argnums=0) if jit else step


def make_buffer_step(
    arch: arch_lib.ArchConfig, strategy: strategy_lib.Strategy,
    replay_size: int, classifier_tx: optax.GradientTransformation, *,
    shard: Callable[[Any], Any] | None = None, jit: bool = True,
) -> Callable[[PLRState, Batch, TaskInfo], tuple[PLRState, Metrics]]:
  """One buffer-replay iteration (Table 1): `step(state, batch, info)`.

  `info.memory` holds the stored level-0 features [M, D_0]; each iteration
  draws `replay_size` of them, the previous classifier recomputes their
  features at every level and their soft targets, and the slices enter the
  classifier at their levels. No generator: `state.generator` is None.
  """
  shard = shard or (lambda tree: tree)
  classifier_step = make_classifier_step(arch, classifier_tx, strategy,
                                         replay_size,
                                         jit=False)

  def step(state: PLRState, batch: Batch, info: TaskInfo):
    if info.phase.replaying and info.memory is None:
      raise ValueError('buffer replay needs the stored features as '
                       'info.memory')
    key = jax.random.fold_in(state.key, state.step)
    replay = when_replaying(
        info,
        lambda: replay_lib.from_buffer(arch, state.prev_classifier,
                                       info.memory, key, replay_size),
        lambda: replay_lib.empty(arch, replay_size, batch.x.dtype))
    classifier, metrics = classifier_step(state.classifier, batch,
                                          shard(replay), info)
    metrics = {f'classifier/{k}': v for k, v in metrics.items()}
    return state.replace(classifier=classifier, step=state.step + 1), metrics

  return jax.jit(step, donate_argnums=0) if jit else step
