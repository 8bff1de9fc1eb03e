"""The classifier's train step: current data and replay slices injected at
their levels, in one pass.

A replay slice at level n enters the classifier after fc_n
(`Classifier.classify_injected`): it never runs fc_1 .. fc_n, and
`stop_gradient` keeps gradients out of whatever produced it. Layer gates
(`optim.gated_update`) make sure a layer that received no data in a step
keeps its parameters and Adam moments.
"""

import dataclasses
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import optax

from plr_jax.models import arch as arch_lib
from plr_jax.models import classifier as classifier_lib
from plr_jax.train import losses
from plr_jax.train import optim
from plr_jax.train import replay as replay_lib
from plr_jax.train import strategy as strategy_lib
from plr_jax.train.state import Batch, Metrics, TaskInfo, TrainState
from plr_jax.train.state import replays_in_one_pass, when_replaying

Classifier = classifier_lib.Classifier
REPLAY_TARGETS = ('soft', 'hard')


INPUTS = ('features', 'images')


def check_inputs(inputs: str) -> None:
  if inputs not in INPUTS:
    raise ValueError(f'inputs must be "features" or "images", got '
                     f'{inputs!r}')


def check_replay_targets(replay_targets: str) -> None:
  if replay_targets not in REPLAY_TARGETS:
    raise ValueError(f'replay targets must be "soft" or "hard", got '
                     f'{replay_targets!r}')


def classifier_gates(arch: arch_lib.ArchConfig, slices: tuple[int, ...],
                     with_current: bool, train_extractor: bool
                     ) -> dict[str, bool]:
  """Which classifier layers receive data in a step (static).

  fc_j sees current data and the replay slices of levels < j; the head sees
  every slice.
  """
  gates = {'extractor': with_current and train_extractor}
  for j in range(1, arch.num_levels + 1):
    gates[f'fc_{j}'] = with_current or sum(slices[:j]) > 0
  gates['head'] = with_current or sum(slices) > 0
  return gates


@dataclasses.dataclass(frozen=True)
class _ClassifierLoss:
  """The classifier's loss in a step built by `make_classifier_step`:
  `loss(params, batch, replay, info) -> (loss, metrics)`, the current rows
  and the replay slices at their levels in one pass. Fields: as
  `make_classifier_step`'s arguments; `slices` the replay rows per level."""
  arch: arch_lib.ArchConfig
  slices: tuple[int, ...]
  replay_size: int
  inputs: str
  with_current: bool
  replay_images: bool
  replay_targets: str

  @property
  def model(self):
    return Classifier(self.arch)

  def current_inputs(self, params, batch: Batch):
    """What the current batch feeds the stack: images or level-0 rows."""
    if self.inputs == 'images' and not self.replay_images:
      return self.model.apply({'params': params}, batch.x,
                              method=Classifier.extract)
    return batch.x

  def replay_inputs(self, replay: replay_lib.ReplayBatch):
    """The replay batch's slices, one entry per level (None: no rows)."""
    if self.replay_images:
      return (jax.lax.stop_gradient(replay.levels[0]),)
    entries, offset = [], 0
    for level, size in enumerate(self.slices):
      rows = replay.levels[level][offset:offset + size]
      entries.append(jax.lax.stop_gradient(rows) if size else None)
      offset += size
    return tuple(entries)

  def logits_of(self, params, current, replayed):
    """One pass over the current rows (or None) and the replayed entries
    (or None); images: one batch through the whole classifier."""
    if self.replay_images:
      rows = [r for r in (current, replayed and replayed[0]) if r is not None]
      return self.model.apply({'params': params}, jnp.concatenate(rows))
    return self.model.apply({'params': params}, current,
                            replayed or (None,) * len(self.slices),
                            method=Classifier.classify_injected)

  def replay_objective(self, logits, replay: replay_lib.ReplayBatch,
                       info: TaskInfo):
    if self.replay_targets == 'hard':
      labels = losses.hard_targets(replay.logits, info.replayed)
      return jnp.mean(losses.cross_entropy(logits, labels, info.active))
    return jnp.mean(losses.distillation(logits, replay.logits, info.replayed,
                                        info.active))

  def replay_loss(self, params, replay: replay_lib.ReplayBatch,
                  info: TaskInfo):
    return self.replay_objective(
        self.logits_of(params, None, self.replay_inputs(replay)), replay, info)

  def __call__(self, params, batch: Batch, replay, info: TaskInfo):
    current_weight, replay_weight = losses.task_weights(info.task)
    if replay is None:
      # Nothing replayed: the plain current loss (no 1/t weighting).
      current_weight = 1.0
    metrics = {}
    loss = 0.0
    if replay is not None and replay.logits.shape[0] != self.replay_size:
      raise ValueError(f'replay batch has {replay.logits.shape[0]} rows, '
                       f'the step was built for {self.replay_size}')
    # When the phase replays, current rows and replay slices share one pass
    # through the stack (each layer one matmul over every row that reaches
    # it).
    one_pass = replays_in_one_pass(info, replay)
    if self.with_current:
      current_rows = self.current_inputs(params, batch)
      if one_pass:
        logits = self.logits_of(params, current_rows,
                                self.replay_inputs(replay))
        logits, replay_logits = jnp.split(logits, [batch.x.shape[0]])
      else:
        logits = self.logits_of(params, current_rows, None)
      current = jnp.mean(losses.cross_entropy(logits, batch.y, info.active))
      metrics['current_loss'] = current
      loss += current_weight * current
    elif one_pass:
      replay_logits = self.logits_of(params, None, self.replay_inputs(replay))
    if replay is not None:
      if one_pass:
        replayed = self.replay_objective(replay_logits, replay, info)
      else:
        replayed = when_replaying(info, self.replay_loss,
                                  lambda *_: jnp.zeros(()), params,
                                  replay, info)
      metrics['replay_loss'] = replayed
      loss += replay_weight * replayed
    metrics['loss'] = loss
    return loss, metrics


def make_classifier_step(
    arch: arch_lib.ArchConfig, tx: optax.GradientTransformation,
    strategy: strategy_lib.Strategy, replay_size: int, *,
    inputs: str = 'features', with_current: bool = True,
    replay_images: bool = False, replay_targets: str = 'soft', jit: bool = True,
) -> Callable[..., tuple[TrainState, Metrics]]:
  """Builds `step(state, batch, replay, info, trainable=None)`.

  Nine parameters: what fixes the step's shapes, then keyword-only switches,
  each with the reference's behaviour as its default.

  Args:
    arch: the architecture.
    tx: the classifier's optimizer.
    strategy: fractions per level; slice n of the replay batch (rows in level
      order) is injected at level n.
    replay_size: rows of every replay batch.
    inputs: `"features"` (level-0 features) or `"images"` (runs the extractor,
      in inference mode, and trains it unless its gate is closed).
    with_current: False builds a replay-only step (`batch` is ignored).
    replay_images: the replay batch holds images (`levels=(images,)`) that
      run through the whole classifier (standard generative replay, GR);
      the strategy must then be IR.
    replay_targets: `"soft"`: distillation towards the previous
      classifier's softened logits (the reference's `--distill`, its PLR
      runs); `"hard"`: cross-entropy towards their argmax among the earlier
      classes (the reference's default, its Fashion-MNIST GR command).
    jit: return the step jit-compiled, state donated.

  Returns:
    The step. `replay=None` leaves replay out (a separate trace): the loss
    is then the current data's alone, unweighted (fine-tuning).
    `trainable` maps layer names to bool arrays that close gates, e.g. to
    freeze layers after the first task.
  """
  check_inputs(inputs)
  check_replay_targets(replay_targets)
  strategy = strategy_lib.check_strategy(strategy, arch)
  slices = strategy_lib.split_batch(strategy, replay_size)
  if replay_images and slices[0] != replay_size:
    raise ValueError('replay of images enters at the input: use IR')
  loss_fn = _ClassifierLoss(
      arch=arch, slices=tuple(slices), replay_size=replay_size, inputs=inputs,
      with_current=with_current, replay_images=replay_images,
      replay_targets=replay_targets)

  def step(state: TrainState, batch: Batch | None,
           replay: replay_lib.ReplayBatch | None, info: TaskInfo,
           trainable: Mapping[str, jax.Array] | None = None):
    grads, metrics = jax.grad(loss_fn, has_aux=True)(
        state.params, batch, replay, info)
    static = classifier_gates(arch, slices if replay is not None else
                              (0,) * len(slices), with_current,
                              inputs == 'images')
    gates = optim.combine_gates(static, state.params, trainable)
    params, opt_state = optim.gated_update(tx, grads, state.params,
                                           state.opt_state, gates)
    return TrainState(params=params, opt_state=opt_state), metrics

  return jax.jit(step, donate_argnums=0) if jit else step
