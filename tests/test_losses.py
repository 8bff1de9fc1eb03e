"""Each loss against a direct numpy computation on tiny inputs."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plr_jax.train import losses

RNG = np.random.default_rng(0)


def _log_softmax(x):
  x = x - x.max(axis=-1, keepdims=True)
  return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _log_normal(z, mean, logvar):
  return -0.5 * np.sum(logvar + (z - mean) ** 2 / np.exp(logvar), axis=-1)


class LossesTest(chex.TestCase):

  def setUp(self):
    super().setUp()
    self.logits = RNG.normal(size=(4, 5)).astype(np.float32) * 3
    self.teacher = RNG.normal(size=(4, 5)).astype(np.float32) * 3
    self.mask = np.array([True, True, False, True, False])

  @chex.variants(with_jit=True, without_jit=True)
  def test_cross_entropy_over_seen_classes(self):
    labels = np.array([0, 3, 1, 1])
    got = self.variant(losses.cross_entropy)(self.logits, labels, self.mask)
    seen = self.logits[:, self.mask]
    col = {0: 0, 1: 1, 3: 2}
    want = -_log_softmax(seen)[np.arange(4), [col[l] for l in labels]]
    chex.assert_shape(got, (4,))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # Unseen classes have no influence, however large their logits.
    pushed = self.logits.copy()
    pushed[:, ~self.mask] = 1e4
    np.testing.assert_allclose(
        self.variant(losses.cross_entropy)(pushed, labels, self.mask), want,
        rtol=1e-5)

  @chex.variants(with_jit=True, without_jit=True)
  def test_distillation_at_temperature_two(self):
    got = self.variant(losses.distillation)(self.logits, self.teacher,
                                            self.mask)
    t = 2.0
    target = np.exp(_log_softmax(self.teacher[:, self.mask] / t))
    log_p = _log_softmax(self.logits[:, self.mask] / t)
    want = -(target * log_p).sum(-1) * t**2
    chex.assert_shape(got, (4,))
    np.testing.assert_allclose(got, want, rtol=1e-5)

  @chex.variants(with_jit=True, without_jit=True)
  def test_distillation_student_over_all_seen_classes(self):
    """Teacher over the earlier classes, padded with zeros (BI-R's KD)."""
    earlier = np.array([True, True, False, False, False])
    seen = np.array([True, True, False, True, False])
    got = self.variant(losses.distillation)(self.logits, self.teacher,
                                            earlier, seen)
    t = 2.0
    target = np.zeros((4, 3))
    target[:, :2] = np.exp(_log_softmax(self.teacher[:, earlier] / t))
    log_p = _log_softmax(self.logits[:, seen] / t)
    want = -(target * log_p).sum(-1) * t**2
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # Raising a current-task logit on a replayed sample costs loss.
    pushed = self.logits.copy()
    pushed[:, 3] += 5.0
    assert np.all(np.asarray(self.variant(losses.distillation)(
        pushed, self.teacher, earlier, seen)) > np.asarray(got))

  def test_distillation_gradient_is_finite_and_ignores_masked_classes(self):
    grad = jax.grad(lambda y: losses.distillation(
        y, self.teacher, self.mask).sum())(jnp.asarray(self.logits))
    chex.assert_tree_all_finite(grad)
    np.testing.assert_array_equal(grad[:, ~self.mask], 0.0)
    # The teacher is a constant.
    teacher_grad = jax.grad(lambda t: losses.distillation(
        self.logits, t, self.mask).sum())(jnp.asarray(self.teacher))
    np.testing.assert_array_equal(teacher_grad, 0.0)

  @chex.variants(with_jit=True, without_jit=True)
  def test_reconstruction_sums_levels_of_half_mean_squared_error(self):
    outs = [RNG.normal(size=(3, 6)), RNG.normal(size=(3, 2))]
    targets = [RNG.normal(size=(3, 6)), RNG.normal(size=(3, 2))]
    got = self.variant(losses.reconstruction)(outs, targets)
    want = sum(0.5 * ((o - t) ** 2).mean(-1) for o, t in zip(outs, targets))
    chex.assert_shape(got, (3,))
    np.testing.assert_allclose(got, want, rtol=1e-5)

  def test_reconstruction_checks_shapes(self):
    with self.assertRaisesRegex(ValueError, 'generated levels'):
      losses.reconstruction([jnp.ones((2, 3))], [])
    with self.assertRaisesRegex(ValueError, r'\(2, 3\) != target shape'):
      losses.reconstruction([jnp.ones((2, 3))], [jnp.ones((2, 4))])

  @chex.variants(with_jit=True, without_jit=True)
  def test_latent_single_mode(self):
    z, mean, logvar, pm, plv = (RNG.normal(size=(4, 3)) for _ in range(5))
    got = self.variant(losses.latent)(z, mean, logvar, pm, plv)
    want = _log_normal(z, mean, logvar) - _log_normal(z, pm, plv)
    np.testing.assert_allclose(got, want, rtol=1e-5)

  @chex.variants(with_jit=True, without_jit=True)
  def test_mixture_latent(self):
    z, mean, logvar = (RNG.normal(size=(4, 3)) for _ in range(3))
    means, logvars = RNG.normal(size=(5, 3)), RNG.normal(size=(5, 3)) * 0.3
    log_w = _log_softmax(RNG.normal(size=(4, 5)))
    got = self.variant(losses.mixture_latent)(z, mean, logvar, means, logvars,
                                              log_w)
    comp = np.stack([_log_normal(z, means[c], logvars[c]) for c in range(5)],
                    axis=-1)
    log_p = np.log(np.sum(np.exp(log_w + comp), axis=-1))
    np.testing.assert_allclose(got, _log_normal(z, mean, logvar) - log_p,
                               rtol=1e-5)

  def test_mixture_with_one_hot_weights_is_the_single_mode_loss(self):
    z, mean, logvar = (RNG.normal(size=(2, 3)) for _ in range(3))
    means, logvars = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3)) * 0.3
    labels = np.array([2, 0])
    log_w = np.where(np.eye(4)[labels] > 0, 0.0, -1e30)
    np.testing.assert_allclose(
        losses.mixture_latent(z, mean, logvar, means, logvars, log_w),
        losses.latent(z, mean, logvar, means[labels], logvars[labels]),
        rtol=1e-5)

  def test_masked_mixture_weights_stay_finite(self):
    """Task 1 has no replayed classes: the loss must not become inf or NaN."""
    log_w = losses.masked_log_softmax(jnp.ones((2, 4)), jnp.zeros(4, bool))
    out = losses.mixture_latent(jnp.ones((2, 3)), jnp.zeros((2, 3)),
                                jnp.zeros((2, 3)), jnp.zeros((4, 3)),
                                jnp.zeros((4, 3)), log_w)
    chex.assert_tree_all_finite(out)

  def test_task_weights(self):
    for t, (cur, rep) in {1: (1.0, 0.0), 2: (0.5, 0.5), 4: (0.25, 0.75)}.items():
      got = losses.task_weights(jnp.asarray(t))
      np.testing.assert_allclose(got, (cur, rep))

  def test_bernoulli_reconstruction_is_pixel_averaged_bce(self):
    logits = RNG.normal(size=(3, 4, 4, 1)).astype(np.float32)
    targets = RNG.uniform(size=(3, 4, 4, 1)).astype(np.float32)
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    bce = -(targets * np.log(p) + (1 - targets) * np.log(1 - p))
    expected = bce.reshape(3, -1).mean(axis=1)
    got = jax.jit(losses.bernoulli_reconstruction)([logits], [targets])
    chex.assert_shape(got, (3,))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    with pytest.raises(ValueError, match='target shape'):
      losses.bernoulli_reconstruction([logits], [targets[:, :2]])

  def test_hard_targets_are_the_teachers_argmax_among_replayed(self):
    logits = jnp.array([[5.0, 1.0, 2.0, 0.0], [0.0, 9.0, 1.0, 3.0]])
    mask = jnp.array([False, True, True, True])
    np.testing.assert_array_equal(losses.hard_targets(logits, mask), [2, 1])


def test_extreme_log_variances_stay_finite():
  """A drifted prior log-variance must not turn replay into inf or NaN."""
  z = jnp.ones((2, 3)) * 50.0
  big = jnp.full((2, 3), 200.0)
  out = losses.latent(z, jnp.zeros((2, 3)), -big, jnp.zeros((2, 3)), big)
  chex.assert_tree_all_finite(out)
  grads = jax.grad(lambda lv: losses.latent(
      z, jnp.zeros((2, 3)), lv, jnp.zeros((2, 3)), big).sum())(-big)
  chex.assert_tree_all_finite(grads)
