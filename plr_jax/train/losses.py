"""The PLR losses as small pure functions returning per-example values.

Callers average over the batch and weight current against replayed data with
`task_weights`. Class restrictions are boolean masks over the head's outputs,
so one compiled step serves every task.
"""

from typing import Sequence

import jax
import jax.numpy as jnp

from plr_jax.models import layers

DISTILLATION_TEMPERATURE = 2.0


def masked_log_softmax(logits: jax.Array, mask: jax.Array) -> jax.Array:
  """log_softmax over the classes in `mask`; a finite floor elsewhere.

  The floor (not -inf) keeps `0 * log p` and its gradients finite.
  """
  floor = 0.5 * jnp.finfo(logits.dtype).min
  return jax.nn.log_softmax(jnp.where(mask, logits, floor), axis=-1)


def cross_entropy(logits: jax.Array, labels: jax.Array,
                  mask: jax.Array) -> jax.Array:
  """Cross-entropy over the classes in `mask` (e.g. those seen so far).

  Args:
    logits: [B, C].
    labels: int [B]; every label must lie in `mask`.
    mask: bool [C].

  Returns:
    Per-example loss [B].
  """
  log_p = masked_log_softmax(logits, mask)
  return -jnp.take_along_axis(log_p, labels[:, None], axis=-1)[:, 0]


def distillation(logits: jax.Array, teacher_logits: jax.Array,
                 mask: jax.Array, student_mask: jax.Array | None = None,
                 temperature: float = DISTILLATION_TEMPERATURE) -> jax.Array:
  """`-sum softmax(t/T) * log_softmax(y/T) * T^2`.

  As in the reference (BI-R's `loss_fn_kd`), the teacher's softmax runs over
  the classes in `mask` (the earlier tasks') and counts as 0 elsewhere, while
  the student's log-softmax runs over `student_mask` (all classes seen so
  far): replayed samples then also push the current task's classes down.
  Restricting the student to the earlier classes too would leave the new
  classes free to win every replayed sample (docs/earlier_results.md).

  Args:
    logits: student logits y [B, C].
    teacher_logits: teacher logits t [B, C] (treated as constants).
    mask: bool [C], the classes of the teacher's distribution.
    student_mask: bool [C], a superset of `mask`; defaults to `mask`.
    temperature: T.

  Returns:
    Per-example loss [B].
  """
  student_mask = mask if student_mask is None else student_mask
  teacher_logits = jax.lax.stop_gradient(teacher_logits)
  target = jnp.exp(masked_log_softmax(teacher_logits / temperature, mask))
  target = jnp.where(mask, target, 0.0)
  log_p = masked_log_softmax(logits / temperature, student_mask)
  per_class = jnp.where(student_mask, target * log_p, 0.0)
  return -jnp.sum(per_class, axis=-1) * temperature**2


def reconstruction(outputs: Sequence[jax.Array],
                   targets: Sequence[jax.Array]) -> jax.Array:
  """Paper eq. 2: sum over levels of 0.5 * mean-over-units squared error.

  Args:
    outputs: generated features per level, each [B, D_n].
    targets: the features to reconstruct, same shapes (treated as constants).

  Returns:
    Per-example loss [B].
  """
  if len(outputs) != len(targets):
    raise ValueError(
        f'{len(outputs)} generated levels but {len(targets)} targets')
  total = 0.0
  for out, target in zip(outputs, targets):
    if out.shape != target.shape:
      raise ValueError(
          f'generated shape {out.shape} != target shape {target.shape}')
    err = out - jax.lax.stop_gradient(target)
    total = total + 0.5 * jnp.mean(jnp.square(err), axis=-1)
  return total


def bernoulli_reconstruction(logits: Sequence[jax.Array],
                             targets: Sequence[jax.Array]) -> jax.Array:
  """Binary cross-entropy averaged over pixels, summed over outputs.

  The reference's image VAE: `F.binary_cross_entropy(sigmoid output,
  target)` averaged over pixels, computed here from the logits (the same
  value without the log's underflow).

  Args:
    logits: pixel logits per output, each [B, ...].
    targets: pixels in [0, 1], same shapes (treated as constants).

  Returns:
    Per-example loss [B].
  """
  total = 0.0
  for logit, target in zip(logits, targets, strict=True):
    if logit.shape != target.shape:
      raise ValueError(
          f'generated shape {logit.shape} != target shape {target.shape}')
    target = jax.lax.stop_gradient(target)
    # -[t log s(l) + (1 - t) log(1 - s(l))] = softplus(l) - t * l.
    per_pixel = jax.nn.softplus(logit) - target * logit
    total = total + jnp.mean(per_pixel.reshape(per_pixel.shape[0], -1),
                             axis=-1)
  return total


def hard_targets(teacher_logits: jax.Array, mask: jax.Array) -> jax.Array:
  """int [B]: the teacher's most likely class among those in `mask` (the
  reference's hard replay targets, its default without `--distill`)."""
  floor = jnp.finfo(teacher_logits.dtype).min
  return jnp.argmax(jnp.where(mask, jax.lax.stop_gradient(teacher_logits),
                              floor), axis=-1)


# Log-variances are clipped where they are exponentiated (the models do the
# same when they sample): `layers.clip_logvar`.
LOGVAR_RANGE = layers.LOGVAR_RANGE
clip_logvar = layers.clip_logvar


def _log_normal(z: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """Diagonal Gaussian log-density summed over the last axis, no constants."""
  logvar = clip_logvar(logvar)
  return -0.5 * jnp.sum(logvar + jnp.square(z - mean) * jnp.exp(-logvar),
                        axis=-1)


def latent(z: jax.Array, mean: jax.Array, logvar: jax.Array,
           prior_mean: jax.Array, prior_logvar: jax.Array) -> jax.Array:
  """BI-R's single-sample `log q(z|x) - log p(z|y)` for one prior mode each.

  Args:
    z: the sample [B, z] drawn from q(z|x) = N(mean, exp(logvar)).
    mean, logvar: the posterior's parameters [B, z].
    prior_mean, prior_logvar: the mode of each example's class [B, z].

  Returns:
    Per-example estimate [B], not yet divided by the normaliser
    (`ArchConfig.input_size`).
  """
  return (_log_normal(z, mean, logvar)
          - _log_normal(z, prior_mean, prior_logvar))


def mixture_latent(z: jax.Array, mean: jax.Array, logvar: jax.Array,
                   prior_means: jax.Array, prior_logvars: jax.Array,
                   log_weights: jax.Array) -> jax.Array:
  """`log q(z|x) - log sum_c w_c N(z; m_c, v_c)` for softly labelled data.

  Args:
    z, mean, logvar: as in `latent`, [B, z].
    prior_means, prior_logvars: every class's mode [C, z].
    log_weights: log mixture weights per example [B, C]; classes outside
      the replayed ones should carry a very negative weight.

  Returns:
    Per-example estimate [B], not yet divided by the normaliser.
  """
  log_prior = _log_normal(z[:, None, :], prior_means[None], prior_logvars[None])
  log_p = jax.nn.logsumexp(log_weights + log_prior, axis=-1)
  return _log_normal(z, mean, logvar) - log_p


def task_weights(task: jax.Array) -> tuple[jax.Array, jax.Array]:
  """`(1/t, 1 - 1/t)`: weights of current and replayed data, t 1-based."""
  current = 1.0 / jnp.asarray(task, jnp.float32)
  return current, 1.0 - current
