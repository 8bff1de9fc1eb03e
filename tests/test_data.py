"""Dataset loaders on fake files in the real formats; augmentation."""

import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plr_jax.data import datasets as data
from tests import fake_data


def test_cifar10_from_standard_files(tmp_path):
  fake_data.write_cifar10(tmp_path)
  ds = data.load('cifar10', str(tmp_path))
  assert ds.train_images.shape == (100, 32, 32, 3)
  assert ds.train_images.dtype == np.uint8
  assert ds.test_images.shape == (40, 32, 32, 3)
  # Files of unknown content are labelled so, never "exact".
  assert ds.num_classes == 10 and ds.label == 'unknown'
  # Channel-major rows become HWC images: the class shows in every pixel.
  assert np.all(ds.train_images[ds.train_labels == 9].mean() >
                ds.train_images[ds.train_labels == 0].mean())


def test_cifar10_written_by_python3_is_read_and_known_by_its_digest(
    tmp_path, monkeypatch):
  root = tmp_path / 'cifar-10-batches-py'
  root.mkdir()
  for name in [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']:
    with open(root / name, 'wb') as fh:
      pickle.dump({'labels': [0, 1], 'data': np.zeros((2, 3072), np.uint8),
                   'filenames': [f'{name}_0.png', f'{name}_1.png']}, fh)
  ds = data.load('cifar10', str(tmp_path))
  assert ds.label == 'unknown' and ds.train_images.shape == (10, 32, 32, 3)
  # The label comes from the test set's content, not from how it was
  # written: the same files, with their digest known, are labelled so.
  digest = data.test_set_digest(ds.test_images, ds.test_labels)
  monkeypatch.setitem(data.KNOWN_TEST_SETS, 'cifar10', {digest: 'jpeg'})
  assert data.load('cifar10', str(tmp_path)).label == 'jpeg'
  # One changed test label changes the digest.
  assert data.test_set_digest(ds.test_images, ds.test_labels[::-1]) != digest


def test_cifar100_fine_labels(tmp_path):
  fake_data.write_cifar100(tmp_path)
  ds = data.load('cifar100', str(tmp_path))
  assert ds.train_images.shape == (300, 32, 32, 3)
  assert ds.num_classes == 100
  np.testing.assert_array_equal(np.bincount(ds.test_labels), np.ones(100))


def test_fashion_mnist_idx_files(tmp_path):
  fake_data.write_fashion_mnist(tmp_path / 'fashion-mnist')
  ds = data.load('fashion_mnist', str(tmp_path))  # finds the subfolder
  assert ds.train_images.shape == (200, 28, 28, 1)
  assert ds.test_labels.shape == (50,)


@pytest.mark.skipif(
    not os.path.isdir(data.DEBIAN_FASHION_MNIST),
    reason='Debian dataset-fashion-mnist not installed (.ci/run installs it)')
def test_fashion_mnist_found_without_flags():
  ds = data.load('fashion_mnist')
  assert ds.train_images.shape == (60000, 28, 28, 1)
  assert ds.test_images.shape == (10000, 28, 28, 1)
  assert ds.label == 'exact'  # the official test set's digest


def test_missing_dataset_is_one_specific_line(tmp_path):
  with pytest.raises(data.DatasetNotFoundError) as error:
    data.load('cifar100', str(tmp_path))
  message = str(error.value)
  assert '\n' not in message
  assert str(tmp_path) in message and 'cifar-100-python.tar.gz' in message
  with pytest.raises(ValueError, match='unknown dataset'):
    data.load('mnist')


def test_normalise_and_subset(tmp_path):
  fake_data.write_cifar10(tmp_path)
  ds = data.load('cifar10', str(tmp_path))
  mean, std = ds.channel_stats()
  x = data.normalise(ds.train_images, mean, std)
  np.testing.assert_allclose(x.reshape(-1, 3).mean(0), 0, atol=1e-4)
  np.testing.assert_allclose(x.reshape(-1, 3).std(0), 1, atol=1e-3)
  sub = ds.subset([2, 7])
  assert set(np.unique(sub.train_labels)) == {2, 7}


@pytest.mark.parametrize('mode,np_mode', [('symmetric', 'symmetric'),
                                           ('zeros', 'constant')])
def test_augment_crops_and_flips(mode, np_mode):
  images = jnp.arange(2 * 6 * 6 * 1, dtype=jnp.float32).reshape(2, 6, 6, 1) + 1
  augment = jax.jit(data.augment, static_argnums=(2, 3))
  out = augment(jax.random.key(0), images, 2, mode)
  assert out.shape == images.shape
  # Same key, same result; every output is a crop of the padded, maybe
  # flipped input.
  np.testing.assert_array_equal(
      out, data.augment(jax.random.key(0), images, 2, mode))
  for img, src in zip(np.asarray(out), np.asarray(images)):
    padded = np.pad(src, ((2, 2), (2, 2), (0, 0)), mode=np_mode)
    crops = [padded[i:i + 6, j:j + 6] for i in range(5) for j in range(5)]
    crops += [c[:, ::-1] for c in crops]
    assert any(np.array_equal(img, c) for c in crops)
  outs = [data.augment(jax.random.key(k), images, 2, mode) for k in range(8)]
  assert len({np.asarray(o).tobytes() for o in outs}) > 1


def test_symmetric_padding_is_torchvisions():
  """torchvision's documented example: [1, 2, 3, 4] padded by 2 in
  symmetric mode is [2, 1, 1, 2, 3, 4, 4, 3]. Every crop of a 1 x 4 image
  padded so, with the same offsets in both axes of a constant row, shows it."""
  row = jnp.asarray([1., 2., 3., 4.])
  image = jnp.broadcast_to(row, (4, 4))[None, :, :, None]
  seen = set()
  for k in range(64):
    out = np.asarray(data.augment(jax.random.key(k), image, 2, 'symmetric'))
    seen.add(tuple(out[0, 0, :, 0]))
  padded = (2., 1., 1., 2., 3., 4., 4., 3.)
  crops = {padded[i:i + 4] for i in range(5)}
  crops |= {c[::-1] for c in crops}
  assert seen <= crops and len(seen) > 2
  with pytest.raises(ValueError, match="'symmetric' or 'zeros'"):
    data.augment(jax.random.key(0), image, 2, 'reflect')


def test_tensorflow_datasets_is_tried_last(tmp_path, monkeypatch):
  """The tfds path, with a stand-in module (no download, no TensorFlow)."""
  import sys
  import types
  calls = []

  def fake_load(name, split, batch_size, data_dir, as_supervised):
    calls.append((name, tuple(split), batch_size, data_dir, as_supervised))
    make = lambda n: (np.zeros((n, 32, 32, 3), np.uint8),
                      np.arange(n) % 100)
    return [make(6), make(3)]

  module = types.SimpleNamespace(load=fake_load, as_numpy=lambda x: x)
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', module)
  ds = data.load('cifar100', str(tmp_path))
  assert ds.source == 'tensorflow-datasets'
  assert ds.train_images.shape == (6, 32, 32, 3) and ds.test_labels.shape == (3,)
  assert calls == [('cifar100', ('train', 'test'), -1, str(tmp_path), True)]


class _Payload:
  """Unpickling this would call open(path, 'w') (pickled as io.open)."""

  def __init__(self, path):
    self.path = path

  def __reduce__(self):
    return (open, (self.path, 'w'))


@pytest.mark.parametrize('payload', ['call', 'object_array', 'truncated'])
def test_crafted_cifar_files_run_nothing(tmp_path, payload):
  fake_data.write_cifar10(tmp_path)
  marker = str(tmp_path / 'ran')
  path = tmp_path / 'cifar-10-batches-py' / 'data_batch_3'
  if payload == 'call':
    content = pickle.dumps({b'data': _Payload(marker), b'labels': [0]},
                           protocol=2)
    message = 'refused to load io.open'
  elif payload == 'object_array':
    content = pickle.dumps({b'data': np.array([_Payload(marker)], object),
                            b'labels': [0]}, protocol=2)
    message = 'refused an object array'
  else:
    content = path.read_bytes()[:-50]
    message = 'damaged pickle'
  path.write_bytes(content)
  with pytest.raises(ValueError, match=f'data_batch_3: {message}'):
    data.load('cifar10', str(tmp_path))
  assert not os.path.exists(marker)
