"""Extractor checkpoints (orbax) and the fingerprint that names their features.

A checkpoint directory holds `variables/` (orbax: the extractor's `params`
and `batch_stats`) and `meta.json` (the architecture's extractor shape, what
it was trained on, its test accuracy and the fingerprint). The fingerprint, a
hash of the parameters, keys the on-disk feature cache: other weights, other
features.
"""

import dataclasses
import hashlib
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from plr_jax import classifier as classifier_lib
from plr_jax import config as config_lib

_EXTRACTOR_FIELDS = ('image_shape', 'conv_channels', 'conv_strides',
                     'conv_batch_norm', 'conv_last_relu')


class CheckpointError(ValueError):
  """A checkpoint that is missing, unreadable or of another architecture."""


def extractor_spec(arch: config_lib.ArchConfig) -> dict:
  """The fields of `arch` that shape the extractor."""
  spec = dataclasses.asdict(arch)
  return {k: list(v) if isinstance(v, tuple) else v
          for k, v in spec.items() if k in _EXTRACTOR_FIELDS}


def fingerprint(variables) -> str:
  """A short hash of every array in `variables`, in tree order."""
  digest = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_flatten_with_path(variables)[0]:
    digest.update(jax.tree_util.keystr(path).encode())
    digest.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
  return digest.hexdigest()[:16]


def write_json_atomic(path: str, data) -> None:
  """Writes JSON to a temporary name, then renames it over `path`."""
  tmp = f'{path}.tmp.{os.getpid()}'
  with open(tmp, 'w') as fh:
    json.dump(data, fh, indent=2, sort_keys=True)
    fh.write('\n')
  os.replace(tmp, path)


def save_extractor(directory: str, arch: config_lib.ArchConfig, variables,
                   meta: dict) -> str:
  """Saves the extractor of classifier `variables`; returns its fingerprint."""
  extractor = {'params': variables['params']['extractor'],
               'batch_stats': variables.get('batch_stats', {}).get(
                   'extractor', {})}
  os.makedirs(directory, exist_ok=True)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.abspath(os.path.join(directory, 'variables')),
                    extractor, force=True)
  checkpointer.wait_until_finished()
  fp = fingerprint(extractor)
  write_json_atomic(os.path.join(directory, 'meta.json'),
                    {**meta, 'extractor': extractor_spec(arch),
                     'fingerprint': fp})
  return fp


def load_extractor(directory: str, arch: config_lib.ArchConfig):
  """Loads an extractor saved by `save_extractor` for `arch`.

  Returns:
    `(variables, meta)`: variables in the classifier's layout
    (`{'params': {'extractor': ..}, 'batch_stats': {'extractor': ..}}`).

  Raises:
    CheckpointError: missing, or made for another extractor shape.
  """
  meta_path = os.path.join(directory, 'meta.json')
  if not os.path.isfile(meta_path):
    raise CheckpointError(f'no extractor checkpoint in {directory} '
                          '(meta.json missing)')
  with open(meta_path) as fh:
    meta = json.load(fh)
  want = extractor_spec(arch)
  if meta.get('extractor') != want:
    raise CheckpointError(
        f'extractor checkpoint {directory} was made for another '
        f'architecture ({meta.get("arch", "?")}: {meta.get("extractor")}), '
        f'not {arch.name}')
  # The target tree (shapes, dtypes, this machine's device) lets a checkpoint
  # written on one backend (say the CPU) be read on another (a GPU).
  fresh = jax.eval_shape(lambda: classifier_lib.Classifier(arch).init(
      jax.random.key(0), jnp.zeros((1,) + tuple(arch.image_shape))))
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
      {'params': fresh['params']['extractor'],
       'batch_stats': fresh.get('batch_stats', {}).get('extractor', {})})
  restored = ocp.StandardCheckpointer().restore(
      os.path.abspath(os.path.join(directory, 'variables')), target)
  variables = {'params': {'extractor': restored['params']}}
  if restored.get('batch_stats'):
    variables['batch_stats'] = {'extractor': restored['batch_stats']}
  return variables, meta
