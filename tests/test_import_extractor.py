"""Importing the reference's PyTorch extractor without torch."""

import builtins
import io
import os
import pickle
import zipfile

import chex
import numpy as np
import pytest

from plr_jax.io import extractors
from plr_jax.io import torch_state
from plr_jax.models import classifier as classifier_lib
from tests import binaries
from tests.conftest import TINY

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        'fixtures')


def _expected():
  with np.load(os.path.join(FIXTURES, 'torch_tiny_outputs.npz')) as data:
    images, outputs = data['images'], data['outputs_nchw']
  # PyTorch's [B, C, H, W] against our [B, H, W, C], both flattened.
  return images, outputs.transpose(0, 2, 3, 1).reshape(len(images), -1)


@pytest.mark.parametrize('name', ['torch_tiny_legacy.pt', 'torch_tiny_zip.pt'])
def test_imported_extractor_computes_torchs_outputs(name):
  state = torch_state.state_dict(torch_state.load(os.path.join(FIXTURES,
                                                               name)))
  assert state['convLayer1.bn.num_batches_tracked'] == 7
  assert state['convLayer2.conv.weight'].shape == (8, 4, 3, 3)
  extractor = torch_state.conv_extractor(state, 2, True)
  variables = {'params': {'extractor': extractor['params']},
               'batch_stats': {'extractor': extractor['batch_stats']}}
  images, expected = _expected()
  features = classifier_lib.Classifier(TINY).apply(
      variables, images, method=classifier_lib.Classifier.extract)
  chex.assert_shape(features, expected.shape)
  np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)


def test_import_binary_writes_a_loadable_extractor(tmp_path):
  dest = str(tmp_path / 'imported')
  (result,) = binaries.run_many([(
      'experiments.import_extractor',
      (f'--checkpoint={os.path.join(FIXTURES, "torch_tiny_zip.pt")}',
       f'--dest={dest}', '--arch=tiny'))])
  assert result.returncode == 0, result.stderr
  variables, meta = extractors.load_extractor(dest, TINY)
  assert meta['imported'] and meta['batches_trained'] == 7
  images, expected = _expected()
  features = classifier_lib.Classifier(TINY).apply(
      variables, images, method=classifier_lib.Classifier.extract)
  np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)


class _Payload:
  """Unpickling this would call open(path, 'w') (pickled as io.open): a
  file appears."""

  def __init__(self, path):
    self.path = path

  def __reduce__(self):
    return (builtins.open, (self.path, 'w'))


def _legacy_with(payload) -> bytes:
  out = io.BytesIO()
  for part in (torch_state.LEGACY_MAGIC, torch_state.LEGACY_PROTOCOL,
               {'little_endian': True}, payload):
    pickle.dump(part, out, protocol=2)
  return out.getvalue()


def _zip_with(payload) -> bytes:
  out = io.BytesIO()
  with zipfile.ZipFile(out, 'w') as archive:
    archive.writestr('archive/data.pkl', pickle.dumps(payload, protocol=2))
  return out.getvalue()


@pytest.mark.parametrize('build', [_legacy_with, _zip_with])
def test_a_pickle_that_would_run_code_is_refused(tmp_path, build):
  marker = str(tmp_path / 'ran')
  path = str(tmp_path / 'evil.pt')
  with open(path, 'wb') as fh:
    fh.write(build({'state': {'w': _Payload(marker)}}))
  with pytest.raises(torch_state.TorchFileError,
                     match='refused to load io.open'):
    torch_state.load(path)
  assert not os.path.exists(marker)
  # The binary: one line, exit 2, nothing run and nothing written.
  dest = str(tmp_path / 'dest')
  (result,) = binaries.run_many([(
      'experiments.import_extractor',
      (f'--checkpoint={path}', f'--dest={dest}', '--arch=tiny'))])
  assert result.returncode == 2
  assert result.stderr.strip().count('\n') == 0, result.stderr
  assert 'refused to load io.open' in result.stderr
  assert not os.path.exists(marker) and not os.path.exists(dest)


def test_other_files_are_refused_in_one_line(tmp_path):
  truncated = str(tmp_path / 'truncated.pt')
  with open(os.path.join(FIXTURES, 'torch_tiny_legacy.pt'), 'rb') as fh:
    data = fh.read()
  with open(truncated, 'wb') as fh:
    fh.write(data[:-100])
  with pytest.raises(torch_state.TorchFileError, match='ends inside'):
    torch_state.load(truncated)
  not_torch = str(tmp_path / 'text.pt')
  with open(not_torch, 'wb') as fh:
    pickle.dump(12345, fh)
  with pytest.raises(torch_state.TorchFileError, match='wrong magic'):
    torch_state.load(not_torch)
  # A state dict of other layers, or for another architecture.
  state = torch_state.state_dict(torch_state.load(
      os.path.join(FIXTURES, 'torch_tiny_zip.pt')))
  with pytest.raises(torch_state.TorchFileError, match='does not: '):
    torch_state.conv_extractor(state, 1, True)
  with pytest.raises(torch_state.TorchFileError,
                     match='has no convLayer2.bn.weight'):
    torch_state.conv_extractor(state, 3, True)
  (result,) = binaries.run_many([(
      'experiments.import_extractor',
      (f'--checkpoint={os.path.join(FIXTURES, "torch_tiny_zip.pt")}',
       f'--dest={tmp_path / "a1"}', '--arch=arch1'))])
  assert result.returncode == 2
  assert 'has no convLayer2.bn.weight' in result.stderr
