"""The generator's train step: a VAE that reconstructs the classifier's
features at its levels (or images, for GR), for current and replayed data.

Current data is reconstructed towards the classifier's features and pulled
towards its class's prior mode; replayed data towards the previous
generator's own outputs and the mixture of the earlier classes' modes the
previous classifier's predictions weight. Which levels enter the loss is
the `recon_levels` mode (`generator_recon_levels`).
"""

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import optax

from plr_jax.models import arch as arch_lib
from plr_jax.models import generator as generator_lib
from plr_jax.train import losses
from plr_jax.train import optim
from plr_jax.train import replay as replay_lib
from plr_jax.train import strategy as strategy_lib
from plr_jax.train.classifier_step import check_replay_targets
from plr_jax.train.state import Metrics, TaskInfo, TrainState
from plr_jax.train.state import replays_in_one_pass, when_replaying

Generator = generator_lib.Generator


@dataclasses.dataclass(frozen=True)
class _GeneratorLoss:
  """The generator's loss in a step built by `make_generator_step`:
  `loss(params, levels, labels, replay, info, key) -> (loss, metrics)`.
  Fields: as `make_generator_step`'s arguments (`model` given)."""
  model: Any
  with_current: bool
  current_levels: tuple[int, ...] | None
  replay_levels: tuple[int, ...] | None
  recon_loss: Callable[..., jax.Array]
  replay_targets: str

  @property
  def normaliser(self) -> float:
    return float(self.model.arch.input_size)

  def noise(self, key, x):
    return generator_lib.latent_noise(self.model.arch, key, x)

  def forward(self, params, x, eps):
    """`(mean, logvar, z, outputs)` of rows `x` with the noise `eps`."""
    return self.model.apply({'params': params}, x, eps,
                            method=type(self.model).reconstruct)

  def vae(self, params, x, key):
    return self.forward(params, x, self.noise(key, x))

  def vae_joint(self, params, x, key, replay_x, replay_key):
    """`vae` of two batches in one pass, each with its own noise."""
    out = self.forward(params, jnp.concatenate([x, replay_x]),
                       jnp.concatenate([self.noise(key, x),
                                        self.noise(replay_key, replay_x)]))
    rows = x.shape[0]
    return (jax.tree.map(lambda a: a[:rows], out),
            jax.tree.map(lambda a: a[rows:], out))

  def recon_of(self, outs, targets, chosen):
    return jnp.mean(self.recon_loss(_pick(outs, chosen),
                                    _pick(targets, chosen)))

  def replay_log_weights(self, replay: replay_lib.ReplayBatch, info):
    """Log mixture weights of the prior modes for each replayed sample."""
    if self.replay_targets == 'hard':
      hard = losses.hard_targets(replay.logits, info.replayed)
      one_hot = jax.nn.one_hot(hard, replay.logits.shape[-1], dtype=bool)
      return jnp.where(one_hot, 0.0, 0.5 * jnp.finfo(replay.logits.dtype).min)
    return losses.masked_log_softmax(
        replay.logits / losses.DISTILLATION_TEMPERATURE, info.replayed)

  def replay_terms(self, params, vae_out, replay: replay_lib.ReplayBatch,
                   info):
    mean, logvar, z, outs = vae_out
    latent = jnp.mean(losses.mixture_latent(
        z, mean, logvar, params['prior_mean'], params['prior_logvar'],
        self.replay_log_weights(replay, info))) / self.normaliser
    return {'replay_recon': self.recon_of(outs, replay.levels,
                                          self.replay_levels),
            'replay_latent': latent}

  def __call__(self, params, levels, labels, replay, info: TaskInfo, key):
    current_key, replay_key = jax.random.split(key)
    current_weight, replay_weight = losses.task_weights(info.task)
    metrics = {}
    loss = 0.0
    # When the phase replays, current and replayed rows share one
    # pass through the VAE (each with the noise it would get alone).
    one_pass = self.with_current and replays_in_one_pass(info, replay)
    if one_pass:
      current_out, replay_out = self.vae_joint(params, levels[0], current_key,
                                               replay.levels[0], replay_key)
    elif self.with_current:
      current_out = self.vae(params, levels[0], current_key)
    if self.with_current:
      mean, logvar, z, outs = current_out
      recon = self.recon_of(outs, levels, self.current_levels)
      latent = jnp.mean(losses.latent(
          z, mean, logvar, params['prior_mean'][labels],
          params['prior_logvar'][labels])) / self.normaliser
      metrics.update(recon=recon, latent=latent)
      loss += current_weight * (recon + latent)
    if replay is not None:
      if one_pass:
        terms = self.replay_terms(params, replay_out, replay, info)
      else:
        zeros = {'replay_recon': jnp.zeros(()),
                 'replay_latent': jnp.zeros(())}
        terms = when_replaying(
            info, lambda p, r, i, k: self.replay_terms(
                p, self.vae(p, r.levels[0], k), r, i),
            lambda *_: zeros, params, replay, info, replay_key)
      metrics.update(terms)
      loss += replay_weight * (terms['replay_recon'] + terms['replay_latent'])
    metrics['loss'] = loss
    return loss, metrics


def _pick(levels, chosen):
  """The entries of `levels` at `chosen` (None: all)."""
  if chosen is None:
    return levels
  return tuple(levels[n] for n in chosen)


def make_generator_step(
    arch: arch_lib.ArchConfig, tx: optax.GradientTransformation, *,
    with_current: bool = True, model=None,
    current_levels: tuple[int, ...] | None = None,
    replay_levels: tuple[int, ...] | None = None,
    recon_loss: Callable[..., jax.Array] = losses.reconstruction,
    replay_targets: str = 'soft',
    jit: bool = True,
) -> Callable[..., tuple[TrainState, Metrics]]:
  """Builds `step(state, levels, labels, replay, info, key, trainable=None)`.

  Nine parameters: the architecture and optimizer, then keyword-only
  switches, each with the reference's behaviour as its default.

  `levels` are the real data's features at every level (the classifier's,
  level 0 first): the reconstruction targets, with `labels` choosing each
  example's prior mode. Replayed data is reconstructed towards the previous
  generator's own outputs; its prior is the mixture of the earlier classes'
  modes weighted by the previous classifier's softened predictions
  (`replay_targets="soft"`), or the mode of its most likely class
  (`"hard"`). `model` defaults to `Generator(arch)`; an `ImageGenerator`
  takes `levels=(images,)` (with `recon_loss=losses.bernoulli_reconstruction`
  for its Bernoulli pixels). `current_levels` and `replay_levels` pick the
  levels whose reconstruction enters the loss for current and replayed data
  (None: all, paper eq. 2; see `generator_recon_levels`). The latent term is
  divided by the input images' C*H*W (`ArchConfig.input_size`), as the
  reference's.
  """
  check_replay_targets(replay_targets)
  loss_fn = _GeneratorLoss(
      model=model or Generator(arch), with_current=with_current,
      current_levels=current_levels, replay_levels=replay_levels,
      recon_loss=recon_loss, replay_targets=replay_targets)

  def step(state: TrainState, levels, labels, replay, info: TaskInfo,
           key: jax.Array, trainable: Mapping[str, jax.Array] | None = None):
    grads, metrics = jax.grad(loss_fn, has_aux=True)(
        state.params, levels, labels, replay, info, key)
    has_data = with_current or replay is not None
    gates = optim.combine_gates({name: has_data for name in state.params},
                           state.params, trainable)
    params, opt_state = optim.gated_update(tx, grads, state.params,
                                           state.opt_state, gates)
    return TrainState(params=params, opt_state=opt_state), metrics

  return jax.jit(step, donate_argnums=0) if jit else step


RECON_LEVELS = ('all', 'only_last_layer', 'used', 'classifier')


def generator_recon_levels(
    strategy: strategy_lib.Strategy, mode: str = 'all'
) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None]:
  """The levels the generator reconstructs: `(for current data, for
  replayed data)`, each a tuple of levels or None for every level.

  The reference's two modes: "all" (its `--latent`: every level for both,
  paper eq. 2) and "only_last_layer" (its `--only-last-layer`: level 0 alone
  for current data, every level for replayed data). Ours: "used" keeps the
  levels a replay slice is injected at, for both; "classifier" keeps level 0
  alone for both, and the hidden levels of a replayed sample are then the
  previous classifier's features of its generated level 0 (see
  `replay.generative`), so the generator never models hidden activations.
  """
  if mode not in RECON_LEVELS:
    raise ValueError(f'recon_levels must be one of {", ".join(RECON_LEVELS)}'
                     f', got {mode!r}')
  if mode == 'all':
    return None, None
  if mode == 'only_last_layer':
    return (0,), None
  if mode == 'classifier':
    return (0,), (0,)
  used = tuple(n for n, f in enumerate(strategy) if f > 0)
  return used, used
