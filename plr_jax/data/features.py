"""The feature cache: frozen-extractor features, computed once per image.

Features live in memory for the process and on disk in the workdir, in
`features/<dataset>-<fingerprint>.npz`, where the fingerprint hashes the
extractor's weights: another extractor never reuses stale features.
"""

import os

import numpy as np

from plr_jax.models import arch as arch_lib
from plr_jax.data import datasets as data_lib
from plr_jax.models import inference

_MEMORY: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}


def cached_features(arch: arch_lib.ArchConfig, variables, fingerprint: str,
                    dataset: data_lib.Dataset, cache_dir: str | None
                    ) -> tuple[np.ndarray, np.ndarray]:
  """Level-0 features of the train and test images, from cache if there.

  Args:
    arch: the architecture whose extractor `variables` hold.
    variables: extractor variables (classifier layout).
    fingerprint: the extractor's fingerprint (`extractors.fingerprint`).
    dataset: the images; normalised here by their own channel statistics.
    cache_dir: where the on-disk cache lives (a run's
      `Workdir.features`); None keeps it in memory only.

  Returns:
    `(train_features, test_features)`, float32 [N, D_0].
  """
  key = (f'{dataset.name}-{len(dataset.train_labels)}', fingerprint)
  if key in _MEMORY:
    return _MEMORY[key]
  path = None
  if cache_dir:
    path = os.path.join(cache_dir, f'{key[0]}-{fingerprint}.npz')
    if os.path.isfile(path):
      with np.load(path) as cached:
        _MEMORY[key] = (cached['train'], cached['test'])
      return _MEMORY[key]
  mean, std = dataset.channel_stats()
  train = inference.extract_features(
      arch, variables, data_lib.normalise(dataset.train_images, mean, std))
  test = inference.extract_features(
      arch, variables, data_lib.normalise(dataset.test_images, mean, std))
  if path:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f'{path}.tmp.{os.getpid()}.npz'
    np.savez(tmp, train=train, test=test)
    os.replace(tmp, path)
  _MEMORY[key] = (train, test)
  return train, test
