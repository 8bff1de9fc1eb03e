"""PyTorch state dicts read as numpy arrays, without PyTorch and running no
code.

`torch.save` writes a pickle whose tensors point at separately stored raw
storages: in the legacy format (before PyTorch 1.6) as a sequence of pickles
followed by each storage's bytes, in the current one as a zip archive with
`data.pkl` and one file per storage. A pickle can name any Python callable
and call it while loading; the unpickler here resolves only the names a
state dict needs (an ordered dict, the tensor-rebuilding functions and the
storage types, each replaced by a harmless stand-in of our own) and refuses
every other name with one line, before anything is called.
"""

import collections
import io
import os
import pickle
import struct
import zipfile

import ml_dtypes
import numpy as np

# torch.save's legacy format starts with this pickled integer, then 1001.
LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES = {
    'FloatStorage': np.float32, 'DoubleStorage': np.float64,
    'HalfStorage': np.float16, 'BFloat16Storage': ml_dtypes.bfloat16,
    'LongStorage': np.int64, 'IntStorage': np.int32,
    'ShortStorage': np.int16, 'CharStorage': np.int8,
    'ByteStorage': np.uint8, 'BoolStorage': np.bool_,
}


class TorchFileError(ValueError):
  """Not a PyTorch state dict we can read, or one naming other objects."""


class _StorageType:
  """Stands in for `torch.FloatStorage` and the like: only a dtype."""

  def __init__(self, name: str):
    self.name = name
    self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Tensor:
  """A tensor described by the pickle; its storage's bytes come later."""

  def __init__(self, storage, offset, size, stride):
    self.storage, self.offset = storage, int(offset)
    self.size = tuple(int(s) for s in size)
    self.stride = tuple(int(s) for s in stride)

  def materialise(self, storages: dict) -> np.ndarray:
    key, dtype, view_offset = self.storage
    data = storages.get(key)
    if data is None:
      raise TorchFileError(f'tensor data for storage {key} is missing')
    start = view_offset + self.offset
    last = start + sum((n - 1) * s for n, s in zip(self.size, self.stride)
                       if n > 0)
    if any(s < 0 for s in self.stride) or (
        all(self.size) and not 0 <= start <= last < len(data)):
      raise TorchFileError(
          f'a tensor of shape {list(self.size)} lies outside its storage of '
          f'{len(data)} elements')
    if not all(self.size):
      return np.zeros(self.size, dtype)
    return np.lib.stride_tricks.as_strided(
        data[start:], self.size,
        tuple(s * data.itemsize for s in self.stride)).copy()


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
  del unused  # requires_grad, backward hooks, metadata: not kept
  return _Tensor(storage, storage_offset, size, stride)


_ALLOWED = {('collections', 'OrderedDict'): collections.OrderedDict,
            ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
            ('torch._utils', '_rebuild_tensor'): _rebuild_tensor}


class _Unpickler(pickle.Unpickler):
  """Resolves only the names a state dict holds; the rest is refused."""

  def __init__(self, file, storage_info: dict):
    super().__init__(file)
    self._storage_info = storage_info

  def find_class(self, module, name):
    if (module, name) in _ALLOWED:
      return _ALLOWED[module, name]
    if module == 'torch' and name in _STORAGE_DTYPES:
      return _StorageType(name)
    raise TorchFileError(
        f'refused to load {module}.{name}: a state dict holds only ordered '
        'dicts, tensors and storages, and nothing named in the file is run')

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and pid and pid[0] == 'storage'
            and len(pid) >= 5 and isinstance(pid[1], _StorageType)):
      raise TorchFileError(f'unexpected persistent id {pid!r:.80}')
    storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
    view = pid[5] if len(pid) > 5 else None
    self._storage_info.setdefault(key, (storage_type.dtype, numel))
    offset = 0
    if view is not None:  # legacy views: (view key, offset, size)
      offset = int(view[1])
    return (key, storage_type.dtype, offset)


def _arrays(tree, storages: dict):
  if isinstance(tree, _Tensor):
    return tree.materialise(storages)
  if isinstance(tree, dict):
    return collections.OrderedDict(
        (k, _arrays(v, storages)) for k, v in tree.items())
  if isinstance(tree, (list, tuple)):
    return type(tree)(_arrays(v, storages) for v in tree)
  return tree


def _load_legacy(fh) -> object:
  info = {}
  try:
    magic = _Unpickler(fh, info).load()
    if magic != LEGACY_MAGIC:
      raise TorchFileError('not a PyTorch file (wrong magic number)')
    protocol = _Unpickler(fh, info).load()
    if protocol != LEGACY_PROTOCOL:
      raise TorchFileError(f'unsupported PyTorch legacy protocol {protocol}')
    sys_info = _Unpickler(fh, info).load()
    if not sys_info.get('little_endian', True):
      raise TorchFileError('big-endian PyTorch files are not supported')
    tree = _Unpickler(fh, info).load()
    keys = _Unpickler(fh, info).load()
  except (pickle.UnpicklingError, EOFError, AttributeError, TypeError,
          IndexError, KeyError) as e:
    raise TorchFileError(f'damaged PyTorch file: {e}') from None
  storages = {}
  for key in keys:
    key = str(key)
    if key not in info:
      raise TorchFileError(f'storage {key} is listed but never used')
    dtype, _ = info[key]
    header = fh.read(8)
    if len(header) != 8:
      raise TorchFileError(f'the file ends before storage {key}')
    (numel,) = struct.unpack('<q', header)
    data = fh.read(numel * dtype.itemsize)
    if numel < 0 or len(data) != numel * dtype.itemsize:
      raise TorchFileError(f'the file ends inside storage {key}')
    storages[key] = np.frombuffer(data, dtype)
  return _arrays(tree, storages)


def _load_zip(path: str) -> object:
  try:
    with zipfile.ZipFile(path) as archive:
      names = archive.namelist()
      pickles = [n for n in names if n.endswith('/data.pkl')
                 or n == 'data.pkl']
      if len(pickles) != 1:
        raise TorchFileError(f'{path}: a zip file without one data.pkl')
      prefix = pickles[0][:-len('data.pkl')]
      order = f'{prefix}byteorder'
      if order in names and archive.read(order).strip() != b'little':
        raise TorchFileError('big-endian PyTorch files are not supported')
      info = {}
      tree = _Unpickler(io.BytesIO(archive.read(pickles[0])), info).load()
      storages = {}
      for key, (dtype, numel) in info.items():
        name = f'{prefix}data/{key}'
        if name not in names:
          raise TorchFileError(f'storage {key} is missing from the archive')
        data = archive.read(name)
        if len(data) < numel * dtype.itemsize:
          raise TorchFileError(f'storage {key} is truncated')
        storages[key] = np.frombuffer(data[:numel * dtype.itemsize], dtype)
  except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError,
          AttributeError, TypeError, IndexError, KeyError) as e:
    raise TorchFileError(f'damaged PyTorch file: {e}') from None
  return _arrays(tree, storages)


def load(path: str) -> object:
  """What `torch.save` wrote to `path`, tensors as numpy arrays.

  Reads the legacy and the zip format. Only ordered dicts (and plain
  containers), tensors and storages are accepted.

  Raises:
    TorchFileError: not readable as such, or naming anything else.
  """
  if not os.path.isfile(path):
    raise TorchFileError(f'{path} is not a file')
  if zipfile.is_zipfile(path):
    return _load_zip(path)
  with open(path, 'rb') as fh:
    return _load_legacy(fh)


def state_dict(tree) -> dict:
  """The tensors of a loaded file: the file itself, or its `state` or
  `state_dict` entry (the reference code saves `{'state': ...}`)."""
  if isinstance(tree, dict):
    for key in ('state', 'state_dict'):
      if isinstance(tree.get(key), dict):
        return tree[key]
    if all(isinstance(v, np.ndarray) for v in tree.values()):
      return tree
  raise TorchFileError('the file holds no state dict (a mapping of names to '
                       'tensors)')


def conv_extractor(state: dict, conv_layers: int, batch_norm: bool,
                   prefix: str | None = None) -> dict:
  """Our extractor's variables from the reference's `ConvLayers` state
  (`convLayer{i}.conv.weight|bias`, `convLayer{i}.bn.weight|bias|
  running_mean|running_var` for every layer but the last).

  Kernels go from PyTorch's [out, in, kh, kw] to our [kh, kw, in, out]; batch
  norm's weight is our scale. `prefix` is what precedes `convLayer1` in the
  names (found when None). Shapes are checked by the caller against the
  architecture (`extractor_file.load`).

  Returns:
    `{'params': {'conv_i': {'conv': {kernel, bias}}, 'bn_i': {scale, bias}},
    'batch_stats': {'bn_i': {mean, var}}}`.

  Raises:
    TorchFileError: a name missing, or names left over.
  """
  if prefix is None:
    found = [k[:-len('convLayer1.conv.weight')] for k in state
             if k.endswith('convLayer1.conv.weight')]
    if len(found) != 1:
      raise TorchFileError(
          'no single convLayer1.conv.weight in the state dict (found '
          f'{len(found)}): not the reference\'s convolutional extractor')
    prefix = found[0]
  params, stats, used = {}, {}, set()

  def take(name):
    key = f'{prefix}{name}'
    if key not in state:
      raise TorchFileError(f'the state dict has no {key}')
    used.add(key)
    return np.asarray(state[key], np.float32)

  for i in range(1, conv_layers + 1):
    params[f'conv_{i}'] = {'conv': {
        'kernel': take(f'convLayer{i}.conv.weight').transpose(2, 3, 1, 0),
        'bias': take(f'convLayer{i}.conv.bias')}}
    if batch_norm and i < conv_layers:
      params[f'bn_{i}'] = {'scale': take(f'convLayer{i}.bn.weight'),
                           'bias': take(f'convLayer{i}.bn.bias')}
      stats[f'bn_{i}'] = {'mean': take(f'convLayer{i}.bn.running_mean'),
                          'var': take(f'convLayer{i}.bn.running_var')}
      used.add(f'{prefix}convLayer{i}.bn.num_batches_tracked')
  left = sorted(k for k in state if k.startswith(f'{prefix}convLayer')
                and k not in used)
  if left:
    raise TorchFileError(
        f'the state dict has convolutional entries this architecture does '
        f'not: {", ".join(left[:4])}{" ..." if len(left) > 4 else ""}')
  return {'params': params, 'batch_stats': stats}
