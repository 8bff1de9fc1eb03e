"""Portable extractors: one `extractor.npz` and a `meta.json`.

The form in which finished extractors are committed (`reported/extractors/`)
and imported ones are written (`experiments.import_extractor`): plain arrays
named by their path in the variables (`params/conv_1/conv/kernel`,
`batch_stats/bn_1/mean`, ...), read with `allow_pickle=False`, so loading one
runs no code and depends on no checkpoint library's version. Loading checks
every name and shape against the architecture and the arrays against the
fingerprint in `meta.json`.
"""

import os

from flax import traverse_util
import jax
import numpy as np

ARRAYS = 'extractor.npz'


class ExtractorFileError(ValueError):
  """A portable extractor that is incomplete, damaged or of another shape."""


def _flatten(tree) -> dict:
  """`{'a': {'b': x}}` -> `{'a/b': x}`."""
  return traverse_util.flatten_dict(tree, sep='/')


def _unflatten(arrays: dict) -> dict:
  return traverse_util.unflatten_dict(arrays, sep='/')


def exists(directory: str | None) -> bool:
  return bool(directory) and os.path.isfile(os.path.join(directory, ARRAYS))


def save(directory: str, extractor: dict) -> None:
  """Writes `{'params': .., 'batch_stats': ..}` of an extractor, atomically."""
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, ARRAYS)
  tmp = f'{path}.tmp.{os.getpid()}.npz'
  np.savez(tmp, **{name: np.asarray(value)
                   for name, value in _flatten(extractor).items()})
  os.replace(tmp, path)


def check(arrays: dict, want: dict, where: str) -> None:
  """Raises `ExtractorFileError` unless the flat `arrays` have exactly the
  names and shapes of the flat `want`."""
  missing = sorted(set(want) - set(arrays))
  extra = sorted(set(arrays) - set(want))
  if missing or extra:
    raise ExtractorFileError(
        f'{where} does not hold this architecture\'s extractor: missing '
        f'{", ".join(missing) or "nothing"}; unexpected '
        f'{", ".join(extra) or "nothing"}')
  for name, spec in want.items():
    if tuple(arrays[name].shape) != tuple(spec.shape):
      raise ExtractorFileError(
          f'{where}: {name} has shape {list(arrays[name].shape)}, expected '
          f'{list(spec.shape)}')


def check_tree(tree: dict, target: dict, where: str) -> None:
  """`check` for nested trees."""
  check(_flatten(tree), _flatten(target), where)


def load(directory: str, target) -> dict:
  """The extractor in `directory`, checked against `target` (a tree of
  `jax.ShapeDtypeStruct` with the expected names, shapes and placement).

  Raises:
    ExtractorFileError: unreadable, a name missing or extra, a wrong shape.
  """
  path = os.path.join(directory, ARRAYS)
  try:
    with np.load(path, allow_pickle=False) as data:
      arrays = {name: data[name] for name in data.files}
  except (OSError, ValueError) as e:
    raise ExtractorFileError(f'{path} is not a readable extractor: '
                             f'{e}') from None
  want = _flatten(target)
  check(arrays, want, path)
  placed = {name: jax.device_put(arrays[name].astype(want[name].dtype),
                                 want[name].sharding)
            for name in want}
  return _unflatten(placed)
