"""Extractors on disk: the orbax form a pretraining writes, and the portable
form (`io.extractor_file`) of committed and imported ones.

An extractor directory holds `variables/` (orbax: the extractor's `params`
and `batch_stats`) or `extractor.npz`, and `meta.json` (the architecture's
extractor shape, what it was trained on, its test accuracy and the
fingerprint). The fingerprint, a hash of the arrays, keys the on-disk
feature cache: other weights, other features.
"""

import dataclasses
import hashlib
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from plr_jax.io import atomic
from plr_jax.io import checkpoint
from plr_jax.io import extractor_file
from plr_jax.models import arch as arch_lib
from plr_jax.models import classifier as classifier_lib

CheckpointError = checkpoint.CheckpointError

_EXTRACTOR_FIELDS = ('image_shape', 'conv_channels', 'conv_strides',
                     'conv_batch_norm', 'conv_last_relu')


def extractor_spec(arch: arch_lib.ArchConfig) -> dict:
  """The fields of `arch` that shape the extractor."""
  spec = dataclasses.asdict(arch)
  return {k: list(v) if isinstance(v, tuple) else v
          for k, v in spec.items() if k in _EXTRACTOR_FIELDS}


def arch_of_extractor(meta: dict) -> arch_lib.ArchConfig:
  """An architecture whose extractor is the one `meta` (an extractor's
  meta.json) describes: its named preset with the recorded extractor shape.

  Raises:
    CheckpointError: no known architecture or no extractor shape recorded.
  """
  try:
    arch = arch_lib.get_arch(meta['arch'])
    spec = {k: tuple(v) if isinstance(v, list) else v
            for k, v in meta['extractor'].items()}
    return dataclasses.replace(arch, **spec)
  except (KeyError, ValueError, TypeError):
    raise CheckpointError(
        f'extractor meta.json names no known architecture and extractor '
        f'shape (arch {meta.get("arch")!r}, extractor '
        f'{meta.get("extractor")!r})') from None


def load_any_extractor(directory: str):
  """Loads whatever extractor `directory` holds, for the architecture its
  meta.json records.

  Returns:
    `(arch, variables, meta)` (see `load_extractor`).

  Raises:
    CheckpointError: no meta.json, no known architecture, or the files do
      not load.
  """
  meta_path = os.path.join(directory, 'meta.json')
  if not os.path.isfile(meta_path):
    raise CheckpointError(f'no finished extractor in {directory} '
                          '(meta.json missing)')
  with open(meta_path) as fh:
    arch = arch_of_extractor(json.load(fh))
  variables, meta = load_extractor(directory, arch)
  return arch, variables, meta


def fingerprint(variables) -> str:
  """A short hash of every array in `variables`, in tree order."""
  digest = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_flatten_with_path(variables)[0]:
    digest.update(jax.tree_util.keystr(path).encode())
    digest.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
  return digest.hexdigest()[:16]


def save_extractor(directory: str, arch: arch_lib.ArchConfig, variables,
                   meta: dict) -> str:
  """Saves the extractor of classifier `variables`; returns its fingerprint."""
  extractor = {'params': variables['params']['extractor'],
               'batch_stats': variables.get('batch_stats', {}).get(
                   'extractor', {})}
  os.makedirs(directory, exist_ok=True)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.abspath(os.path.join(directory, 'variables')),
                    checkpoint.savable(extractor), force=True)
  checkpointer.wait_until_finished()
  fp = fingerprint(extractor)
  atomic.write_json(os.path.join(directory, 'meta.json'),
                    {**meta, 'extractor': extractor_spec(arch),
                     'fingerprint': fp})
  return fp


def extractor_target(arch: arch_lib.ArchConfig) -> dict:
  """`{'params': .., 'batch_stats': ..}` of `arch`'s extractor as
  `jax.ShapeDtypeStruct`s on this machine's first device."""
  # The target tree (shapes, dtypes, this machine's device) lets a checkpoint
  # written on one backend (say the CPU) be read on another (a GPU).
  fresh = jax.eval_shape(lambda: classifier_lib.Classifier(arch).init(
      jax.random.key(0), jnp.zeros((1,) + tuple(arch.image_shape))))
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
      {'params': fresh['params']['extractor'],
       'batch_stats': fresh.get('batch_stats', {}).get('extractor', {})})


def export_extractor(directory: str, arch: arch_lib.ArchConfig, variables,
                     meta: dict) -> str:
  """Writes the extractor of classifier `variables` in the portable form
  (`extractor.npz` and `meta.json`, the fingerprint and the architecture's
  extractor shape added to `meta`); returns the fingerprint."""
  extractor = {'params': variables['params']['extractor'],
               'batch_stats': variables.get('batch_stats', {}).get(
                   'extractor', {})}
  extractor = jax.tree.map(np.asarray, extractor)
  extractor_file.save(directory, extractor)
  fp = fingerprint(extractor)
  atomic.write_json(os.path.join(directory, 'meta.json'),
                    {**meta, 'extractor': extractor_spec(arch),
                     'fingerprint': fp})
  return fp


def load_extractor(directory: str, arch: arch_lib.ArchConfig):
  """Loads an extractor saved by `save_extractor` or `export_extractor` for
  `arch`.

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
  target = extractor_target(arch)
  if extractor_file.exists(directory):
    try:
      restored = extractor_file.load(directory, target)
    except extractor_file.ExtractorFileError as e:
      raise CheckpointError(str(e)) from None
    if fingerprint(restored) != meta.get('fingerprint'):
      raise CheckpointError(
          f'extractor {directory}: its arrays have fingerprint '
          f'{fingerprint(restored)}, its meta.json says '
          f'{meta.get("fingerprint")}: the files do not belong together')
  else:
    restored = ocp.StandardCheckpointer().restore(
        os.path.abspath(os.path.join(directory, 'variables')), target)
  variables = {'params': {'extractor': restored['params']}}
  if restored.get('batch_stats'):
    variables['batch_stats'] = {'extractor': restored['batch_stats']}
  return variables, meta
