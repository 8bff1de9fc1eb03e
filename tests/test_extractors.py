"""Portable extractors: export, load, damage, and the committed ones."""

import glob
import json
import os

import chex
import jax
import numpy as np
import pytest

from plr_jax.io import checkpoint
from plr_jax.io import extractors
from plr_jax.models import arch as arch_lib
from plr_jax.models import classifier as classifier_lib
from plr_jax.train import continual
from tests.conftest import TINY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMITTED = sorted(glob.glob(os.path.join(ROOT, 'reported', 'extractors',
                                          '*', 'meta.json')))
# What meta.json of a committed extractor must say (issue 27, item 2).
META_FIELDS = ('arch', 'epochs', 'crop_padding', 'seed', 'test_accuracy',
               'data', 'data_fingerprint', 'command', 'code', 'wall_time_s',
               'machine', 'fingerprint', 'extractor')


def _exported(tmp_path, arch=TINY):
  variables = continual.init_classifier(arch, jax.random.key(3))
  # Batch statistics that are not the initial ones.
  variables = jax.tree.map(lambda x: x + 0.25, variables)
  directory = str(tmp_path / 'portable')
  fp = extractors.export_extractor(directory, arch, variables,
                                   {'arch': arch.name, 'classes': [0, 1]})
  return variables, directory, fp


def test_export_then_load_is_exact(tmp_path):
  variables, directory, fp = _exported(tmp_path)
  assert sorted(os.listdir(directory)) == ['extractor.npz', 'meta.json']
  loaded, meta = extractors.load_extractor(directory, TINY)
  assert meta['fingerprint'] == fp
  chex.assert_trees_all_equal(loaded['params']['extractor'],
                              variables['params']['extractor'])
  chex.assert_trees_all_equal(loaded['batch_stats']['extractor'],
                              variables['batch_stats']['extractor'])
  # The orbax form of the same variables has the same fingerprint.
  orbax_dir = str(tmp_path / 'orbax')
  assert extractors.save_extractor(orbax_dir, TINY, variables, {}) == fp


def test_changed_arrays_are_refused(tmp_path):
  _, directory, _ = _exported(tmp_path)
  path = os.path.join(directory, 'extractor.npz')
  with np.load(path) as data:
    arrays = dict(data)
  arrays['params/conv_1/conv/kernel'] = arrays[
      'params/conv_1/conv/kernel'] * 1.01
  np.savez(path, **arrays)
  with pytest.raises(checkpoint.CheckpointError,
                     match='do not belong together'):
    extractors.load_extractor(directory, TINY)


def test_missing_array_and_other_shape_are_refused(tmp_path):
  _, directory, _ = _exported(tmp_path)
  path = os.path.join(directory, 'extractor.npz')
  with np.load(path) as data:
    arrays = dict(data)
  kernel = arrays.pop('params/conv_2/conv/kernel')
  np.savez(path, **arrays)
  with pytest.raises(checkpoint.CheckpointError,
                     match='missing params/conv_2/conv/kernel'):
    extractors.load_extractor(directory, TINY)
  arrays['params/conv_2/conv/kernel'] = kernel[:, :, :, :1]
  np.savez(path, **arrays)
  with pytest.raises(checkpoint.CheckpointError, match='has shape'):
    extractors.load_extractor(directory, TINY)


def test_object_arrays_are_refused(tmp_path):
  # np.load runs no unpickling: an object array is an error, not code.
  _, directory, _ = _exported(tmp_path)
  path = os.path.join(directory, 'extractor.npz')
  np.savez(path, **{'params/conv_1/conv/kernel': np.array([{}], object)})
  with pytest.raises(checkpoint.CheckpointError, match='not a readable'):
    extractors.load_extractor(directory, TINY)


def test_committed_extractors_exist():
  # Table 1 needs both 100-epoch extractors (issue 27, item 2).
  arches = set()
  for path in COMMITTED:
    with open(path) as fh:
      arches.add(json.load(fh)['arch'])
  assert {'arch1', 'arch2'} <= arches, COMMITTED


@pytest.mark.parametrize('meta_path', COMMITTED,
                         ids=[os.path.basename(os.path.dirname(p))
                              for p in COMMITTED])
def test_committed_extractor_matches_its_meta(meta_path):
  directory = os.path.dirname(meta_path)
  with open(meta_path) as fh:
    meta = json.load(fh)
  missing = [f for f in META_FIELDS if f not in meta]
  assert not missing, missing
  arch = extractors.arch_of_extractor(meta)
  assert arch == arch_lib.get_arch(meta['arch'])  # the paper's size
  # load_extractor checks names, shapes and the fingerprint.
  variables, loaded_meta = extractors.load_extractor(directory, arch)
  assert loaded_meta == meta
  images = jax.random.normal(jax.random.key(0), (4,) + arch.image_shape)
  features = classifier_lib.Classifier(arch).apply(
      variables, images, method=classifier_lib.Classifier.extract)
  chex.assert_shape(features, (4, arch.feature_dim))
  chex.assert_tree_all_finite(features)
  assert 0.1 < meta['test_accuracy'] <= 1
