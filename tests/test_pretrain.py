"""Extractor pretraining: the convolutions' two backward passes."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plr_jax.data import datasets as data_lib
from plr_jax.io import checkpoint as checkpoint_lib
from plr_jax.io import interrupts
from plr_jax.models import arch as arch_lib
from plr_jax.models import classifier as classifier_lib
from plr_jax.train import pretrain as pretrain_lib
from tests.conftest import TINY


def _dataset(images_per_class=24, classes=4):
  rng = np.random.default_rng(0)
  labels = np.repeat(np.arange(classes), images_per_class)
  images = rng.integers(0, 256, (len(labels),) + TINY.image_shape, np.uint8)
  return data_lib.Dataset('tiny', images, labels, images[:16], labels[:16],
                          source='test')


def test_patch_gradients_pretrain_as_xlas():
  # Three epochs of 6 steps (augmentation, batch norm, Adam): the extractor
  # trained with the 'patches' backward equals XLA's to float tolerance.
  config = pretrain_lib.PretrainConfig(epochs=3, batch_size=16,
                                       learning_rate=1e-3)
  results = {
      backward: pretrain_lib.pretrain(
          TINY, _dataset(),
          dataclasses.replace(config, conv_backward=backward), seed=0)
      for backward in ('xla', 'patches')}
  (xla, xla_acc, _), (patches, patches_acc, _) = (results['xla'],
                                                   results['patches'])
  # A convolution's bias before batch norm has a gradient of rounding noise
  # only, which Adam turns into steps of the learning rate's size: compare
  # what the network computes, and every kernel.
  def kernels(v):
    layers = v['params']['extractor']
    return {k: layers[k]['conv']['kernel'] for k in layers
            if k.startswith('conv')}
  chex.assert_trees_all_close(kernels(patches), kernels(xla), rtol=1e-3,
                              atol=1e-5)
  arch = arch_lib.with_classes(TINY, 4)
  model = classifier_lib.Classifier(arch)
  images = jnp.asarray(_dataset().test_images, jnp.float32) / 255.0
  logits = {b: model.apply(v, images) for b, v in (('xla', xla),
                                                   ('patches', patches))}
  chex.assert_trees_all_close(logits['patches'], logits['xla'], rtol=1e-3,
                              atol=1e-4)
  assert patches_acc == xla_acc
  initial = model.init(jax.random.key(0), images)
  assert not np.allclose(kernels(initial)['conv_1'], kernels(xla)['conv_1'])


def test_resume_refuses_the_other_backward(tmp_path):
  config = pretrain_lib.PretrainConfig(epochs=1, batch_size=16,
                                       conv_backward='xla')
  checkpoints = checkpoint_lib.EpochCheckpointer(str(tmp_path))
  pretrain_lib.pretrain(TINY, _dataset(), config, 0, checkpoints=checkpoints)
  longer = dataclasses.replace(config, epochs=2, conv_backward='patches')
  with pytest.raises(checkpoint_lib.CheckpointError,
                     match='computed with conv_backward=xla; resume it'):
    pretrain_lib.pretrain(TINY, _dataset(), longer, 0,
                          checkpoints=checkpoint_lib.EpochCheckpointer(
                              str(tmp_path)))


def test_pretrain_config_checks_the_backward():
  with pytest.raises(ValueError, match='conv backward must be one of'):
    pretrain_lib.PretrainConfig(conv_backward='fft')


def test_a_stop_within_an_epoch_resumes_as_uninterrupted(tmp_path):
  # On the CPU the stop request is polled between steps: the interrupted
  # epoch is dropped and recomputed from the last saved one.
  config = pretrain_lib.PretrainConfig(epochs=3, batch_size=16,
                                       learning_rate=1e-3)
  whole, whole_acc, _ = pretrain_lib.pretrain(TINY, _dataset(), config, 0)
  calls = []

  def stop_at_the_eighth_poll():
    calls.append(1)
    return len(calls) == 8  # epoch 1 polls 6 times (5 steps, its end)

  with pytest.raises(interrupts.Interrupted,
                     match=r'during epoch 2/3 \(epochs up to 1 are saved\)'):
    pretrain_lib.pretrain(
        TINY, _dataset(), config, 0,
        checkpoints=checkpoint_lib.EpochCheckpointer(str(tmp_path)),
        should_stop=stop_at_the_eighth_poll)
  resumed, resumed_acc, _ = pretrain_lib.pretrain(
      TINY, _dataset(), config, 0,
      checkpoints=checkpoint_lib.EpochCheckpointer(str(tmp_path)))
  chex.assert_trees_all_equal(resumed, whole)
  assert resumed_acc == whole_acc
