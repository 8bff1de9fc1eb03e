"""Tiny fake datasets written in the real on-disk formats."""

import gzip
import os
import pickle

import numpy as np


def _images(rng, labels, shape):
  """Class-dependent mean brightness, so the classes can be told apart."""
  base = (labels[:, None, None, None] * 255 // (labels.max() + 1))
  noise = rng.integers(0, 60, size=(len(labels),) + shape)
  return np.clip(base + noise, 0, 255).astype(np.uint8)


def write_cifar10(root, per_class_train=12, per_class_test=4, seed=0):
  """`root/cifar-10-batches-py/` as the original (bytes keys, Python 2)."""
  rng = np.random.default_rng(seed)
  out = os.path.join(root, 'cifar-10-batches-py')
  os.makedirs(out, exist_ok=True)
  def dump(name, count):
    labels = np.repeat(np.arange(10), count)
    rng.shuffle(labels)
    x = _images(rng, labels, (32, 32, 3)).transpose(0, 3, 1, 2)
    with open(os.path.join(out, name), 'wb') as fh:
      pickle.dump({b'batch_label': b'fake', b'labels': labels.tolist(),
                   b'data': x.reshape(len(labels), -1),
                   b'filenames': [b'fake.png'] * len(labels)}, fh)
  for i in range(1, 6):
    dump(f'data_batch_{i}', max(1, per_class_train // 5))
  dump('test_batch', per_class_test)
  return out


def write_cifar100(root, per_class_train=3, per_class_test=1, seed=1):
  """`root/cifar-100-python/{train,test}` with fine and coarse labels."""
  rng = np.random.default_rng(seed)
  out = os.path.join(root, 'cifar-100-python')
  os.makedirs(out, exist_ok=True)
  for name, count in (('train', per_class_train), ('test', per_class_test)):
    labels = np.repeat(np.arange(100), count)
    x = _images(rng, labels, (32, 32, 3)).transpose(0, 3, 1, 2)
    with open(os.path.join(out, name), 'wb') as fh:
      pickle.dump({b'fine_labels': labels.tolist(),
                   b'coarse_labels': (labels // 5).tolist(),
                   b'data': x.reshape(len(labels), -1)}, fh)
  return out


def _write_idx(path, array):
  header = bytes([0, 0, 8, array.ndim]) + b''.join(
      int(d).to_bytes(4, 'big') for d in array.shape)
  with gzip.open(path, 'wb') as fh:
    fh.write(header + array.astype(np.uint8).tobytes())


def write_fashion_mnist(root, per_class_train=20, per_class_test=5, seed=2):
  """The four IDX `.gz` files."""
  rng = np.random.default_rng(seed)
  os.makedirs(root, exist_ok=True)
  for prefix, count in (('train', per_class_train), ('t10k', per_class_test)):
    labels = np.repeat(np.arange(10), count)
    x = _images(rng, labels, (28, 28, 1))[..., 0]
    _write_idx(os.path.join(root, f'{prefix}-images-idx3-ubyte.gz'), x)
    _write_idx(os.path.join(root, f'{prefix}-labels-idx1-ubyte.gz'), labels)
  return root
