"""Batched inference: level-0 features, predictions, per-task accuracy.

What training (the accuracy after every task, the extractor's test accuracy)
and evaluation both need, so it lives with the models.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from plr_jax.models import classifier as classifier_lib
from plr_jax.models import arch as arch_lib


@functools.partial(jax.jit, static_argnums=0)
def _predict(arch: arch_lib.ArchConfig, params, features, allowed):
  logits = classifier_lib.Classifier(arch).apply(
      {'params': params}, features, 0,
      method=classifier_lib.Classifier.classify_from)
  return jnp.argmax(jnp.where(allowed, logits, -jnp.inf), axis=-1)


@functools.partial(jax.jit, static_argnums=0)
def _extract(arch: arch_lib.ArchConfig, variables, images):
  return classifier_lib.Classifier(arch).apply(
      variables, images, method=classifier_lib.Classifier.extract)


def _batched(fn, inputs: np.ndarray, batch_size: int) -> np.ndarray:
  """Applies `fn` in fixed-size batches (the last one padded): one compile."""
  out = []
  for start in range(0, len(inputs), batch_size):
    chunk = inputs[start:start + batch_size]
    pad = batch_size - len(chunk) if len(inputs) > batch_size else 0
    if pad:
      chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:],
                                              chunk.dtype)])
    out.append(np.asarray(fn(chunk))[:len(chunk) - pad])
  return np.concatenate(out)


def extract_features(arch: arch_lib.ArchConfig, variables,
                     images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
  """Level-0 features [N, D_0] of images [N, H, W, C], frozen extractor.

  Computed once per image and reused for every iteration and every task.
  """
  return _batched(lambda x: _extract(arch, variables, x),
                  np.asarray(images, np.float32), batch_size)


def predict(arch: arch_lib.ArchConfig, params, features: np.ndarray,
            batch_size: int = 4096, allowed=None) -> np.ndarray:
  """Argmax over the head outputs for level-0 features [N, D_0].

  `allowed`: bool [C], the classes a prediction may take (None: all).
  """
  if allowed is None:
    allowed = np.ones(arch.num_classes, bool)
  allowed = jnp.asarray(allowed, bool)
  return _batched(lambda x: _predict(arch, params, x, allowed),
                  np.asarray(features, np.float32), batch_size)


def task_accuracies(arch: arch_lib.ArchConfig, params, features: np.ndarray,
                    labels: np.ndarray, tasks: np.ndarray,
                    num_tasks: int, seen=None) -> np.ndarray:
  """Accuracy on each task's test examples, [num_tasks], in [0, 1].

  `seen`: bool [C], the classes trained so far; predictions are the argmax
  over them (class-incremental evaluation after an intermediate task, as
  the reference code evaluates), so a head output of a class not yet
  trained cannot win. After the last task every class is seen and this is
  the argmax over all head outputs. None: all classes.
  """
  correct = predict(arch, params, features,
                    allowed=seen) == np.asarray(labels)
  return np.array([correct[tasks == t].mean() if np.any(tasks == t)
                   else np.nan for t in range(num_tasks)])
