"""A frozen extractor's features computed once per task (`frozen_inputs`)."""

import dataclasses

import chex
import jax
import numpy as np
import pytest

from plr_jax.io import checkpoint as checkpoint_lib
from plr_jax.io import interrupts
from plr_jax.models import arch as arch_lib
from plr_jax.models import inference
from plr_jax.train import continual
from plr_jax.train import frozen_inputs
from tests.conftest import TINY3
from tests.test_continual import _tiny3_images, assert_results_close

CONFIG = continual.ContinualConfig(
    arch=TINY3, strategy=(0.5, 0.3, 0.2), num_tasks=3, iters_per_task=12,
    batch_size=8, replay_size=8, learning_rate=3e-3, chunk_size=5,
    inputs='images', extractor_trainable_until=1,
    recon_levels='only_last_layer')


def _run(config, seeds=(0, 1), hooks=None, checkpoints=None):
  data = _tiny3_images()
  return continual.run_seeds(config, data, data, list(seeds), hooks=hooks,
                             checkpoints=checkpoints)


def test_a_rows_convolution_does_not_depend_on_its_batch():
  """What makes the cached features the per-iteration ones: the level-0
  row of an image, extracted in a batch of 256 drawn rows or with all rows
  at once, is the same bit for bit (the Fashion-MNIST network)."""
  arch = arch_lib.get_arch('fmnist')
  variables = continual.init_classifier(arch, jax.random.key(0))
  images = np.asarray(jax.random.uniform(jax.random.key(1),
                                         (600,) + arch.image_shape))
  pick = np.asarray(jax.random.randint(jax.random.key(2), (256,), 0, 600))
  drawn = inference.extract_features(arch, variables, images[pick],
                                     batch_size=256)
  whole = inference.extract_features(arch, variables, images, batch_size=600)
  np.testing.assert_array_equal(drawn, whole[pick])


@pytest.mark.parametrize('batched', [False, True])
def test_task_inputs_are_each_seeds_extracted_task_rows(batched):
  """Seed i's task rows, extracted by its own extractor, in block i of one
  array; its rows point at that block, in the task's row order."""
  images, labels = _tiny3_images()
  seeds = [0, 1] if batched else [0]
  splits = [continual.task_split(CONFIG, s, labels, labels) for s in seeds]
  data = continual.task_data(CONFIG, splits, seeds, 2, batched)
  params = [continual.init_classifier(TINY3, jax.random.key(s))['params']
            for s in seeds]
  stacked = continual.stack_seeds(params, batched)
  features, task_labels, cached = frozen_inputs.task_inputs(
      CONFIG, stacked, images, labels, data, batched)
  rows = np.asarray(data.rows).reshape(len(seeds), -1)
  num_rows = np.asarray(data.num_rows).reshape(len(seeds))
  positions = np.asarray(cached.rows).reshape(rows.shape)
  features, task_labels = np.asarray(features), np.asarray(task_labels)
  assert features.shape == (rows.size, TINY3.feature_dim)
  for i, (seed_params, n) in enumerate(zip(params, num_rows)):
    real = rows[i, :n]
    np.testing.assert_array_equal(
        positions[i], i * rows.shape[1] + np.arange(rows.shape[1]))
    np.testing.assert_array_equal(
        features[positions[i, :n]],
        inference.extract_features(TINY3, {'params': seed_params},
                                   images[real]))
    np.testing.assert_array_equal(features[positions[i, n:]], 0.0)
    np.testing.assert_array_equal(task_labels[positions[i, :n]], labels[real])
  np.testing.assert_array_equal(cached.num_rows, data.num_rows)


def test_applies_only_after_the_freeze_to_kinds_that_read_images_through_it():
  assert not frozen_inputs.applies(CONFIG, 1)
  assert frozen_inputs.applies(CONFIG, 2)
  assert frozen_inputs.applies(dataclasses.replace(CONFIG, replay='none'), 3)
  # GR's replayed images run through the convolutions: nothing to cache.
  assert not frozen_inputs.applies(
      dataclasses.replace(CONFIG, replay='images', strategy=(1.0, 0.0, 0.0),
                          recon_levels='all'), 2)
  assert not frozen_inputs.applies(
      dataclasses.replace(CONFIG, extractor_trainable_until=None), 2)
  assert not frozen_inputs.applies(
      dataclasses.replace(CONFIG, cache_frozen_features=False), 2)


def test_cached_features_give_the_per_iteration_run():
  """Cached or extracted every iteration: task 1 bit for bit (nothing is
  cached there), the rest to float tolerance; the frozen extractor is the
  one task 1 left, bit for bit, either way."""
  cached = _run(CONFIG)
  recomputed = _run(dataclasses.replace(CONFIG, cache_frozen_features=False))
  for a, b in zip(cached, recomputed):
    for name in a.losses[0]:
      np.testing.assert_array_equal(a.losses[0][name], b.losses[0][name])
    assert_results_close(a, b)
    chex.assert_trees_all_equal(a.state.classifier.params['extractor'],
                                b.state.classifier.params['extractor'])


def test_a_run_with_cached_features_resumes_bit_for_bit(tmp_path):
  """Stopped inside task 2 (its features cached when the task began),
  resumed: the cache is rebuilt from the restored extractor and the run
  ends where the uninterrupted one does, bit for bit."""
  whole = _run(CONFIG)
  polls = []

  def stop_in_task_2():
    polls.append(1)
    return len(polls) == 4  # task 1: 3 chunks; the first of task 2
  make = lambda: checkpoint_lib.RunCheckpointer(
      str(tmp_path), every=5)
  with pytest.raises(interrupts.Interrupted, match='task 2, iteration 5'):
    _run(CONFIG, hooks=continual.Hooks(should_stop=stop_in_task_2),
         checkpoints=make())
  resumed = _run(CONFIG, checkpoints=make())
  for a, b in zip(resumed, whole):
    np.testing.assert_array_equal(a.accuracy, b.accuracy)
    chex.assert_trees_all_equal(a.state.classifier.params,
                                b.state.classifier.params)
    chex.assert_trees_all_equal(a.state.generator.params,
                                b.state.generator.params)
