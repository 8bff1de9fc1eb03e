"""Modified FID (docs/design.md, "Protocols"): Frechet distance in a reference
classifier's last hidden layer instead of Inception's.

The reference has the run's architecture; on the frozen extractor's features
its hidden stack and head are trained on all classes jointly. Generated
level-0 samples (uniform over the class modes) and the test images' level-0
features are embedded by its last hidden layer, and the two Gaussians fitted
to the embeddings are compared.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from plr_jax.io import interrupts
from plr_jax.models import classifier as classifier_lib
from plr_jax.models import arch as arch_lib
from plr_jax.models import init as model_init
from plr_jax.models import generator as generator_lib
from plr_jax.train import optim


def frechet_distance(mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray,
                     cov2: np.ndarray) -> float:
  """`|m1 - m2|^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2))`, in float64.

  tr((C1 C2)^(1/2)) is the sum of the square roots of the eigenvalues of the
  symmetric PSD matrix C1^(1/2) C2 C1^(1/2), which has the same spectrum.
  """
  mean1, mean2 = np.asarray(mean1, np.float64), np.asarray(mean2, np.float64)
  cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
  vals, vecs = np.linalg.eigh(cov1)
  root1 = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
  inner = np.linalg.eigvalsh(root1 @ cov2 @ root1)
  trace_root = np.sum(np.sqrt(np.clip(inner, 0, None)))
  diff = mean1 - mean2
  return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * trace_root)


def gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean and covariance of the rows of x."""
  x = np.asarray(x, np.float64)
  return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


# Steps of the reference training per compiled call: the stop request is
# polled between calls, so a stop waits for at most this many steps.
REFERENCE_CHUNK = 20


@functools.lru_cache(maxsize=None)
def _make_reference_chunk(arch, batch_size, learning_rate):
  """`chunk(carry, perm, features, labels, start, length)`: steps start ..
  start + length - 1 of an epoch whose batch order is `perm`."""
  model = classifier_lib.Classifier(arch)
  tx = optim.adam(learning_rate)

  def loss_fn(params, x, y):
    logits = model.apply({'params': params}, x, 0,
                         method=classifier_lib.Classifier.classify_from)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  def chunk(carry, perm, features, labels, start, length):
    def step(carry, i):
      params, opt_state = carry
      rows = jax.lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size)
      grads = jax.grad(loss_fn)(params, features[rows], labels[rows])
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), None

    return jax.lax.scan(step, carry, start + jnp.arange(length))[0]

  return tx, jax.jit(chunk, static_argnames='length')


def train_reference(arch: arch_lib.ArchConfig, features: np.ndarray,
                    labels: np.ndarray, seed: int, epochs: int = 20,
                    batch_size: int = 256, learning_rate: float = 1e-4,
                    should_stop: interrupts.StopCheck | None = None):
  """Trains the reference's hidden stack and head on all classes jointly.

  `should_stop` is polled every `REFERENCE_CHUNK` steps; True raises
  `interrupts.Interrupted` (nothing is kept: a rerun trains it again)."""
  steps_per_epoch = max(1, len(labels) // batch_size)
  batch_size = min(batch_size, len(labels))
  tx, chunk = _make_reference_chunk(arch, batch_size, learning_rate)
  key = jax.random.fold_in(jax.random.key(seed), 0x3F1D)
  params = model_init.init_classifier(arch, key)['params']
  params = {k: v for k, v in params.items() if k != 'extractor'}
  carry = (params, tx.init(params))
  features, labels = jnp.asarray(features), jnp.asarray(labels, jnp.int32)
  for e in range(epochs):
    perm = jax.random.permutation(jax.random.fold_in(key, e + 1),
                                  features.shape[0])
    for start in range(0, steps_per_epoch, REFERENCE_CHUNK):
      if e or start:
        interrupts.check(should_stop, lambda e=e: (
            f'the mFID reference training, epoch {e + 1}/{epochs}'))
      length = min(REFERENCE_CHUNK, steps_per_epoch - start)
      carry = chunk(carry, perm, features, labels, jnp.int32(start),
                    length=length)
  return carry[0]


@functools.partial(jax.jit, static_argnums=(0, 3))
def _generate(arch, generator_params, key, num):
  _, levels = generator_lib.Generator(arch).apply(
      {'params': generator_params}, key, jnp.ones(arch.num_classes, bool), num,
      method=generator_lib.Generator.sample)
  return levels[0]


@functools.partial(jax.jit, static_argnums=0)
def _embed(arch, params, features):
  return classifier_lib.Classifier(arch).apply(
      {'params': params}, features, method=classifier_lib.Classifier.embed)


def mfid(arch: arch_lib.ArchConfig, reference_params, generator_params,
         test_features: np.ndarray, key: jax.Array,
         num_samples: int = 10_000) -> float:
  """mFID of a generator's level-0 samples against the test features."""
  generated = _generate(arch, generator_params, key, num_samples)
  fake = np.asarray(_embed(arch, reference_params, generated))
  real = np.asarray(_embed(arch, reference_params, jnp.asarray(test_features)))
  return frechet_distance(*gaussian(fake), *gaussian(real))
