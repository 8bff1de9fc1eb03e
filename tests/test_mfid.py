"""The Frechet distance against scipy's matrix square root."""

import numpy as np
import scipy.linalg

from plr_jax.eval import mfid


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
