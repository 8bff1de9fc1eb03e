"""Datasets: CIFAR-10, CIFAR-100 and Fashion-MNIST, from files or tfds.

The only module that knows about files. It yields numpy arrays: uint8 images
[N, H, W, C] and int32 labels. Sources, in the order tried:

1. the standard files under `data_dir`: `cifar-10-batches-py/`,
   `cifar-100-python/`, the four Fashion-MNIST IDX `.gz` files (in `data_dir`
   or `data_dir/fashion-mnist/`);
2. for Fashion-MNIST, Debian's `dataset-fashion-mnist` package in
   `/usr/share/datasets/fashion-mnist`;
3. tensorflow-datasets, if it is installed (`pip install -e '.[tfds]'`).

A dataset found nowhere raises `DatasetNotFoundError` with one line naming
where it looked and how to get it.
"""

import dataclasses
import gzip
import hashlib
import os

import jax
import jax.numpy as jnp
import numpy as np

from plr_jax.data import safe_pickle

DEBIAN_FASHION_MNIST = '/usr/share/datasets/fashion-mnist'
_FMNIST_FILES = ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
                 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')
_HOW_TO_GET = {
    'cifar10': 'untar https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz '
               "into the data directory, or pip install -e '.[tfds]'",
    'cifar100': 'untar https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz'
                " into the data directory, or pip install -e '.[tfds]'",
    'fashion_mnist': 'apt-get install dataset-fashion-mnist, put the four IDX '
                     ".gz files in the data directory, or pip install -e "
                     "'.[tfds]'",
}
NAMES = tuple(_HOW_TO_GET)


class DatasetNotFoundError(ValueError):
  """The dataset is in none of the places looked at."""


# What a dataset is, recognised by the sha256 of its test split
# (`test_set_digest`): the official Fashion-MNIST test set (Debian's
# `dataset-fashion-mnist` ships the official files) and the JPEG CIFAR-10
# stand-in as `make_cifar10_batches.py` writes it. Anything else read from
# files is "unknown": no official CIFAR files were available to record
# their digests. Data through tensorflow-datasets, which verifies its
# downloads' checksums, is "exact".
KNOWN_TEST_SETS = {
    'fashion_mnist': {
        '9a494dc49efeb996f4076c469b31cd058152067b1594ba6ab85dd739fce3775e':
            'exact'},
    'cifar10': {
        'c11608cdec0c18206a29af287b6ef1ca7c5ab777ff067deaa84ff7077751e3cb':
            'jpeg'},
}


def test_set_digest(images: np.ndarray, labels: np.ndarray) -> str:
  """sha256 of a split: its uint8 images as stored, then int64 labels."""
  digest = hashlib.sha256(np.ascontiguousarray(images, np.uint8).tobytes())
  digest.update(np.asarray(labels, np.int64).tobytes())
  return digest.hexdigest()


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
  """Train and test splits of one dataset, as numpy arrays."""
  name: str
  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  source: str
  # 'exact', 'jpeg' (the lossy CIFAR-10 stand-in) or 'unknown'.
  label: str = 'unknown'

  def fingerprint(self) -> str:
    """A short hash of the training and test arrays (a run's data
    identity)."""
    digest = hashlib.sha256()
    for array in (self.train_images, self.train_labels, self.test_images,
                  self.test_labels):
      digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]

  @property
  def num_classes(self) -> int:
    return int(self.train_labels.max()) + 1

  def channel_stats(self) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of the training images, in [0, 1] units."""
    x = self.train_images.reshape(-1, self.train_images.shape[-1]) / 255.0
    return x.mean(axis=0).astype(np.float32), x.std(axis=0).astype(np.float32)

  def subset(self, classes) -> 'Dataset':
    """Only the examples of `classes` (labels unchanged)."""
    keep_train = np.isin(self.train_labels, classes)
    keep_test = np.isin(self.test_labels, classes)
    return dataclasses.replace(
        self, train_images=self.train_images[keep_train],
        train_labels=self.train_labels[keep_train],
        test_images=self.test_images[keep_test],
        test_labels=self.test_labels[keep_test])


def load(name: str, data_dir: str | None = None) -> Dataset:
  """Loads `name` (cifar10, cifar100, fashion_mnist) from files or tfds."""
  if name not in _HOW_TO_GET:
    raise ValueError(f'unknown dataset {name!r}; choose one of '
                     f'{", ".join(NAMES)}')
  looked = []
  for directory in _candidate_dirs(name, data_dir):
    found = _FILE_LOADERS[name](directory)
    looked.append(directory)
    if found is not None:
      arrays = found
      digest = test_set_digest(arrays[2], arrays[3])
      label = KNOWN_TEST_SETS.get(name, {}).get(digest, 'unknown')
      return Dataset(name, *arrays, source=directory, label=label)
  tfds_found = _load_tfds(name, data_dir)
  if tfds_found is not None:
    return Dataset(name, *tfds_found, source='tensorflow-datasets',
                   label='exact')
  where = ', '.join(looked) if looked else 'no data directory given'
  raise DatasetNotFoundError(
      f'{name} not found (looked in: {where}; tensorflow-datasets: '
      f'{_tfds_status()}); to get it: {_HOW_TO_GET[name]}')


def _candidate_dirs(name, data_dir):
  dirs = []
  if data_dir:
    dirs.append(data_dir)
    if name == 'fashion_mnist':
      dirs.append(os.path.join(data_dir, 'fashion-mnist'))
  if name == 'fashion_mnist':
    dirs.append(DEBIAN_FASHION_MNIST)
  return dirs


def _load_cifar(directory, subdir, train_files, test_files, label_key):
  root = os.path.join(directory, subdir)
  paths = [os.path.join(root, f) for f in train_files + test_files]
  if not all(os.path.isfile(p) for p in paths):
    return None

  def read(files):
    images, labels = [], []
    for f in files:
      path = os.path.join(root, f)
      with open(path, 'rb') as fh:
        try:
          batch = safe_pickle.load(fh)
        except safe_pickle.UnsafePickleError as e:
          raise safe_pickle.UnsafePickleError(f'{path}: {e}') from None
      if not isinstance(batch, dict):
        raise safe_pickle.UnsafePickleError(
            f'{path}: not a CIFAR batch (a dict), but {type(batch).__name__}')
      # The original files have bytes keys (pickled by Python 2); files
      # written by Python 3, such as the JPEG stand-in's, have str keys.
      batch = {k.decode() if isinstance(k, bytes) else k: v
               for k, v in batch.items()}
      if 'data' not in batch or label_key not in batch:
        raise safe_pickle.UnsafePickleError(
            f'{path}: not a CIFAR batch (no data or {label_key})')
      images.append(np.asarray(batch['data'], np.uint8))
      labels.append(np.asarray(batch[label_key], np.int32))
    images = np.concatenate(images).reshape(-1, 3, 32, 32)
    return images.transpose(0, 2, 3, 1), np.concatenate(labels)
  return (*read(train_files), *read(test_files))


def _load_cifar10(directory):
  return _load_cifar(directory, 'cifar-10-batches-py',
                     [f'data_batch_{i}' for i in range(1, 6)], ['test_batch'],
                     'labels')


def _load_cifar100(directory):
  return _load_cifar(directory, 'cifar-100-python', ['train'], ['test'],
                     'fine_labels')


def _read_idx(path):
  with gzip.open(path, 'rb') as fh:
    data = fh.read()
  ndim = data[3]
  shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big')
                for i in range(ndim))
  return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _load_fashion_mnist(directory):
  paths = [os.path.join(directory, f) for f in _FMNIST_FILES]
  if not all(os.path.isfile(p) for p in paths):
    return None
  train_x, train_y, test_x, test_y = (_read_idx(p) for p in paths)
  return (train_x[..., None], train_y.astype(np.int32), test_x[..., None],
          test_y.astype(np.int32))


_FILE_LOADERS = {'cifar10': _load_cifar10, 'cifar100': _load_cifar100,
                 'fashion_mnist': _load_fashion_mnist}


def _tfds_status():
  try:
    import tensorflow_datasets  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return 'not installed'
  return 'not prepared'


def _load_tfds(name, data_dir):
  """The dataset through tfds, if tfds is installed and can provide it."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  try:
    splits = tfds.as_numpy(tfds.load(name, split=['train', 'test'],
                                     batch_size=-1, data_dir=data_dir,
                                     as_supervised=True))
  except Exception:  # pylint: disable=broad-except
    return None  # not downloadable or not prepared: report as not found
  (train_x, train_y), (test_x, test_y) = splits
  return (np.asarray(train_x, np.uint8), np.asarray(train_y, np.int32),
          np.asarray(test_x, np.uint8), np.asarray(test_y, np.int32))


def normalise(images: np.ndarray, mean: np.ndarray,
              std: np.ndarray) -> np.ndarray:
  """uint8 images to float32, standardised per channel."""
  return ((images.astype(np.float32) / 255.0 - mean) / std).astype(np.float32)


def augment(key: jax.Array, images: jax.Array, pad: int = 4,
            mode: str = 'symmetric') -> jax.Array:
  """Random crop of the padded image, then random horizontal flip.

  Args:
    key: PRNG key.
    images: [B, H, W, C], normalised or not: both padding modes commute with
      a per-channel affine normalisation.
    pad: padding on each side before cropping back to H x W.
    mode: 'symmetric' (the border mirrored, edge pixel repeated: numpy's and
      torchvision's `padding_mode='symmetric'`, as the reference code) or
      'zeros' (zero padding; for normalised images the mean colour).

  Returns:
    Augmented images, same shape.
  """
  if mode not in ('symmetric', 'zeros'):
    raise ValueError(f"crop padding must be 'symmetric' or 'zeros', got "
                     f'{mode!r}')
  batch, height, width, _ = images.shape
  crop_key, flip_key = jax.random.split(key)
  offsets = jax.random.randint(crop_key, (batch, 2), 0, 2 * pad + 1)
  padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)),
                   mode='symmetric' if mode == 'symmetric' else 'constant')

  def crop(image, offset):
    return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0),
                                 (height, width, image.shape[-1]))

  cropped = jax.vmap(crop)(padded, offsets)
  flip = jax.random.bernoulli(flip_key, 0.5, (batch, 1, 1, 1))
  return jnp.where(flip, cropped[:, :, ::-1, :], cropped)
