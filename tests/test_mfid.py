"""The Frechet distance against scipy's matrix square root."""

import numpy as np
import pytest
import scipy.linalg

from plr_jax.eval import mfid
from plr_jax.io import interrupts
from plr_jax.models import arch as arch_lib
from tests.conftest import TINY


def _scipy_frechet(m1, c1, m2, c2):
  root = scipy.linalg.sqrtm(c1 @ c2)
  return float(np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * root.real))


def test_frechet_distance_matches_scipy():
  rng = np.random.default_rng(0)
  for dim in (1, 3, 8):
    a = rng.normal(size=(500, dim)) @ rng.normal(size=(dim, dim))
    b = rng.normal(size=(400, dim)) @ rng.normal(size=(dim, dim)) + 0.7
    got = mfid.frechet_distance(*mfid.gaussian(a), *mfid.gaussian(b))
    want = _scipy_frechet(*mfid.gaussian(a), *mfid.gaussian(b))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_frechet_distance_of_a_gaussian_to_itself_is_zero():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(300, 5))
  assert abs(mfid.frechet_distance(*mfid.gaussian(x), *mfid.gaussian(x))) < 1e-8
  # A pure shift of the mean costs its squared length.
  m, c = mfid.gaussian(x)
  np.testing.assert_allclose(mfid.frechet_distance(m, c, m + 2.0, c), 5 * 4.0,
                             rtol=1e-8)


def test_reference_training_polls_the_stop_request_within_an_epoch():
  # 2 epochs of 45 steps: chunks of 20, 20 and 5 steps, polled before every
  # chunk but the first, so the second poll falls inside epoch 1.
  arch = arch_lib.with_classes(TINY, 4)
  rng = np.random.default_rng(0)
  features = rng.normal(size=(45 * 8, arch.feature_dim)).astype(np.float32)
  labels = rng.integers(0, 4, len(features))
  polls = []

  def stop_at_the_second_poll():
    polls.append(1)
    return len(polls) == 2

  with pytest.raises(interrupts.Interrupted,
                     match='the mFID reference training, epoch 1/2'):
    mfid.train_reference(arch, features, labels, seed=0, epochs=2,
                         batch_size=8, should_stop=stop_at_the_second_poll)
  assert len(polls) == 2
  polls.clear()
  mfid.train_reference(arch, features, labels, seed=0, epochs=2,
                       batch_size=8, should_stop=lambda: polls.append(1))
  assert len(polls) == 5  # 3 chunks per epoch, the first not polled
