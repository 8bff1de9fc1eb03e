"""Replay batches: what the previous task's networks hand to the current one.

A `ReplayBatch` carries the features of every level for each replayed sample
and the previous classifier's logits on it (the soft targets). It comes from
the previous generator (generative PLR) or from a buffer of stored samples
whose representations the previous classifier recomputes (Table 1).
"""

import flax
import jax
import jax.numpy as jnp

from plr_jax.models import classifier as classifier_lib
from plr_jax.models import arch as arch_lib
from plr_jax.models import generator as generator_lib


@flax.struct.dataclass
class ReplayBatch:
  """Replayed samples at every level, with their soft targets.

  Attributes:
    levels: features of every level, level 0 first, each [R, D_n].
    logits: the previous classifier's logits on the level-0 sample [R, C].
  """
  levels: tuple[jax.Array, ...]
  logits: jax.Array


def generative(arch: arch_lib.ArchConfig, generator_params, classifier_params,
               key: jax.Array, class_mask: jax.Array, num: int, *,
               hidden_from_classifier: bool = False) -> ReplayBatch:
  """Samples `num` replays from a (previous) generator and labels them.

  Classes are drawn uniformly from `class_mask` (the earlier tasks' classes),
  z from their prior modes, and every level is decoded. The (previous)
  classifier's logits on the level-0 sample are the soft targets; with
  `hidden_from_classifier` the same forward pass also gives the hidden
  levels, which replace the decoder's (at no extra cost).
  """
  _, levels = generator_lib.Generator(arch).apply(
      {'params': generator_params}, key, class_mask, num,
      method=generator_lib.Generator.sample)
  # One forward pass gives the soft targets and the classifier's levels
  # (unused ones are dropped by XLA).
  logits, classified = classifier_lib.Classifier(arch).apply(
      {'params': classifier_params}, levels[0],
      method=classifier_lib.Classifier.levels)
  if hidden_from_classifier:
    levels = classified
  return ReplayBatch(levels=jax.lax.stop_gradient(levels),
                     logits=jax.lax.stop_gradient(logits))


def from_buffer(arch: arch_lib.ArchConfig, classifier_params,
                features: jax.Array, key: jax.Array, num: int) -> ReplayBatch:
  """Draws `num` stored level-0 samples and recomputes their representations.

  As the reference's latent buffer (a fresh random permutation of the stored
  samples each iteration, its first batch taken), a batch holds distinct
  samples when the buffer has at least `num`; a smaller buffer is drawn
  with replacement.

  Args:
    arch: the architecture.
    classifier_params: the previous classifier, which gives the levels and
      soft targets.
    features: the buffer's level-0 features [M, D_0].
    key: PRNG key for the draw.
    num: replay batch size (static).
  """
  size = features.shape[0]
  if size >= num:
    rows = jax.random.permutation(key, size)[:num]
  else:
    rows = jax.random.randint(key, (num,), 0, size)
  logits, levels = classifier_lib.Classifier(arch).apply(
      {'params': classifier_params}, features[rows],
      method=classifier_lib.Classifier.levels)
  return ReplayBatch(levels=jax.lax.stop_gradient(levels),
                     logits=jax.lax.stop_gradient(logits))


def empty(arch: arch_lib.ArchConfig, num: int,
          dtype=jnp.float32) -> ReplayBatch:
  """Zeros shaped like a replay batch (for steps where nothing is replayed)."""
  return ReplayBatch(
      levels=tuple(jnp.zeros((num, d), dtype) for d in arch.level_dims),
      logits=jnp.zeros((num, arch.num_classes), dtype))
