"""Pickled dataset files (the CIFAR batches) read without running code.

The CIFAR python files are pickles of dicts holding lists, bytes and numpy
arrays. Unpickling can call any function a file names; this unpickler
resolves only numpy's array reconstruction and dtype (and refuses object
arrays, whose items would be further pickles), so a crafted file is an
error, never code that runs.
"""

import io
import pickle

import numpy as np


class UnsafePickleError(ValueError):
  """A pickle naming anything but numpy arrays, or a damaged one."""


def _reconstruct(subtype, shape, dtype):
  if subtype is not np.ndarray:
    raise UnsafePickleError(f'refused to build a {subtype!r}: only plain '
                            'numpy arrays are read')
  return np.ndarray.__new__(np.ndarray, shape, dtype)


def _dtype(*args):
  dtype = np.dtype(*args)
  if dtype.hasobject:
    raise UnsafePickleError('refused an object array: only numeric numpy '
                            'arrays are read')
  return dtype


def _encode(text, encoding='latin1'):
  # How protocol-2 pickles written by Python 3 spell a bytes object.
  if not isinstance(text, str) or encoding != 'latin1':
    raise UnsafePickleError('refused _codecs.encode of anything but latin1 '
                            'text')
  return text.encode('latin1')


_ALLOWED = {
    ('_codecs', 'encode'): _encode,
    ('numpy.core.multiarray', '_reconstruct'): _reconstruct,
    ('numpy._core.multiarray', '_reconstruct'): _reconstruct,
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): _dtype,
}


class _Unpickler(pickle.Unpickler):

  def find_class(self, module, name):
    if (module, name) in _ALLOWED:
      return _ALLOWED[module, name]
    raise UnsafePickleError(
        f'refused to load {module}.{name}: a dataset file holds only dicts, '
        'lists, bytes and numpy arrays, and nothing named in it is run')


def load(fh: io.BufferedIOBase, encoding: str = 'bytes'):
  """`pickle.load(fh, encoding=encoding)` restricted to data.

  Raises:
    UnsafePickleError: the file names anything else, or is damaged.
  """
  try:
    return _Unpickler(fh, encoding=encoding).load()
  except UnsafePickleError:
    raise
  except (pickle.UnpicklingError, EOFError, AttributeError, TypeError,
          ValueError, IndexError, KeyError, MemoryError) as e:
    raise UnsafePickleError(f'damaged pickle: {e}') from None
