"""Classifier and generator entry points: shapes, routing, sampling."""

import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plr_jax.models import classifier as classifier_lib
from plr_jax.models import arch as arch_lib
from plr_jax.train import continual
from plr_jax.models import generator as generator_lib
from plr_jax.models import image_generator
from plr_jax.models import layers
from tests.conftest import TINY, TINY3

Classifier = classifier_lib.Classifier
Generator = generator_lib.Generator


def test_preset_shapes_follow_design():
  arch1, arch2 = arch_lib.PRESETS['arch1'], arch_lib.PRESETS['arch2']
  assert arch1.feature_dim == 1024 and arch1.level_dims == (1024, 2000)
  assert arch2.level_dims == (1024, 1000, 1000)
  assert arch_lib.PRESETS['fmnist'].level_dims == (3136, 50, 50)
  assert arch_lib.PRESETS['fmnist_scripts'].num_levels == 1
  # Without convolutions level 0 is the flat image.
  assert arch_lib.PRESETS['fmnist_mlp'].level_dims == (784, 50, 50)
  assert arch1.fc_param_counts == (2_050_000, 4_002_000, 200_100)
  assert arch2.fc_param_counts[1:] == (1_001_000, 1_001_000, 100_100)
  with pytest.raises(ValueError, match='unknown architecture'):
    arch_lib.get_arch('resnet')


@pytest.mark.parametrize('name', ['arch1', 'arch2', 'fmnist'])
def test_real_presets_have_the_design_shapes(name):
  """Abstract evaluation: the full-size networks, without computing them."""
  arch = arch_lib.PRESETS[name]
  variables = jax.eval_shape(
      lambda k: continual.init_classifier(arch, k), jax.random.key(0))
  images = jax.ShapeDtypeStruct((2,) + arch.image_shape, jnp.float32)
  features = jax.eval_shape(
      lambda v, x: Classifier(arch).apply(v, x, method=Classifier.extract),
      variables, images)
  chex.assert_shape(features, (2, arch.feature_dim))
  params = jax.eval_shape(
      lambda k: continual.init_generator(arch, k), jax.random.key(0))
  levels = jax.eval_shape(
      lambda p, x: Generator(arch).apply({'params': p}, x, jax.random.key(0)),
      params, features)[3]
  chex.assert_shape(levels, [(2, d) for d in arch.level_dims])
  assert params['prior_mean'].shape == (arch.num_classes, arch.z_dim)


class ClassifierTest(chex.TestCase):

  def setUp(self):
    super().setUp()
    self.variables = continual.init_classifier(TINY, jax.random.key(0))
    self.images = jax.random.normal(jax.random.key(1), (5, 8, 8, 3))
    self.model = Classifier(TINY)

  def test_parameter_names_and_pytorch_init(self):
    params = self.variables['params']
    assert tuple(params) == classifier_lib.layer_names(TINY)
    for name, fan_in in (('fc_1', 128), ('fc_2', 16), ('head', 16)):
      for leaf in params[name].values():
        assert float(jnp.max(jnp.abs(leaf))) <= 1 / np.sqrt(fan_in)
        assert float(jnp.std(leaf)) > 0.3 / np.sqrt(fan_in)
    assert 'batch_stats' in self.variables

  @chex.variants(with_jit=True, without_jit=True)
  def test_entry_point_shapes(self):
    model, variables = self.model, self.variables
    extract = self.variant(lambda v, x: model.apply(
        v, x, method=Classifier.extract))
    features = extract(variables, self.images)
    chex.assert_shape(features, (5, TINY.feature_dim))
    logits, levels = self.variant(lambda v, h: model.apply(
        v, h, method=Classifier.levels))(variables, features)
    chex.assert_shape(logits, (5, TINY.num_classes))
    chex.assert_shape(levels, [(5, d) for d in TINY.level_dims])
    full = self.variant(lambda v, x: model.apply(v, x))(variables, self.images)
    chex.assert_trees_all_close(full, logits, atol=1e-6)
    for level in range(TINY.num_levels):
      out = self.variant(lambda v, h, n=level: model.apply(
          v, h, n, method=Classifier.classify_from))(variables, levels[level])
      chex.assert_shape(out, (5, TINY.num_classes))
      chex.assert_trees_all_close(out, logits, atol=1e-5)

  def test_classify_from_runs_only_deeper_layers(self):
    """Level-1 classification needs no extractor or fc_1 parameters."""
    params = self.variables['params']
    deep = {'fc_2': params['fc_2'], 'head': params['head']}
    h = jnp.ones((2, 16))
    out = self.model.apply({'params': deep}, h, 1,
                           method=Classifier.classify_from)
    chex.assert_shape(out, (2, TINY.num_classes))
    with pytest.raises(ValueError, match='level 2 out of range'):
      self.model.apply(self.variables, h, 2, method=Classifier.classify_from)

  def test_classify_injected_equals_classify_from_row_for_row(self):
    """Rows entering at several levels share one pass; each row gets the
    logits `classify_from` gives it, and the gradients are those of separate
    passes with the injected rows held constant."""
    model = Classifier(TINY3)
    params = continual.init_classifier(TINY3, jax.random.key(4))['params']
    params = {k: v for k, v in params.items() if k != 'extractor'}
    keys = jax.random.split(jax.random.key(5), 4)
    features = jax.random.normal(keys[0], (4, TINY3.level_dims[0]))
    injected = (jax.random.normal(keys[1], (3, TINY3.level_dims[0])), None,
                jax.random.normal(keys[2], (2, TINY3.level_dims[2])))
    weights = jax.random.normal(keys[3], (9, TINY3.num_classes))

    def one_pass(params, features):
      return model.apply({'params': params}, features, injected,
                         method=Classifier.classify_injected)

    def separate(params, features):
      groups = [(features, 0)] + [(jax.lax.stop_gradient(rows), level)
                                  for level, rows in enumerate(injected)
                                  if rows is not None]
      return jnp.concatenate([
          model.apply({'params': params}, rows, level,
                      method=Classifier.classify_from)
          for rows, level in groups])

    out = one_pass(params, features)
    chex.assert_shape(out, (9, TINY3.num_classes))
    chex.assert_trees_all_close(out, separate(params, features), rtol=1e-5,
                                atol=1e-6)
    loss = lambda f: lambda p, x: jnp.sum(f(p, x) * weights)
    chex.assert_trees_all_close(
        jax.grad(loss(one_pass), argnums=(0, 1))(params, features),
        jax.grad(loss(separate), argnums=(0, 1))(params, features),
        rtol=1e-5, atol=1e-5)
    # Nothing enters at level 0: fc_1 is not needed.
    deep = {k: v for k, v in params.items() if k != 'fc_1'}
    chex.assert_trees_all_close(
        model.apply({'params': deep}, None, (None,) + injected[1:],
                    method=Classifier.classify_injected), out[7:],
        rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match='2 injected levels for tiny3'):
      model.apply({'params': params}, features, injected[:2],
                  method=Classifier.classify_injected)

  def test_levels_are_post_relu_hidden_outputs(self):
    params = self.variables['params']
    h0 = jax.random.normal(jax.random.key(2), (3, TINY.feature_dim))
    _, levels = self.model.apply({'params': params}, h0,
                                 method=Classifier.levels)
    fc1 = params['fc_1']
    expected = np.maximum(np.asarray(h0) @ np.asarray(fc1['kernel'])
                          + np.asarray(fc1['bias']), 0)
    np.testing.assert_allclose(levels[1], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(levels[0], h0)

  def test_batch_norm_trains_in_train_mode_only(self):
    out, updates = self.model.apply(self.variables, self.images, True,
                                    method=Classifier.extract,
                                    mutable=['batch_stats'])
    chex.assert_shape(out, (5, TINY.feature_dim))
    before = self.variables['batch_stats']['extractor']['bn_1']['mean']
    after = updates['batch_stats']['extractor']['bn_1']['mean']
    assert not np.allclose(before, after)


class GeneratorTest(chex.TestCase):

  def setUp(self):
    super().setUp()
    self.arch = TINY3
    self.params = continual.init_generator(TINY3, jax.random.key(3))
    self.model = Generator(TINY3)

  @chex.variants(with_jit=True, without_jit=True)
  def test_encode_decode_shapes(self):
    model, params = self.model, {'params': self.params}
    x = jax.random.normal(jax.random.key(0), (4, TINY3.feature_dim))
    mean, logvar = self.variant(lambda p, x: model.apply(
        p, x, method=Generator.encode))(params, x)
    chex.assert_shape([mean, logvar], (4, TINY3.z_dim))
    mean, logvar, z, levels = self.variant(
        lambda p, x, k: model.apply(p, x, k))(params, x, jax.random.key(1))
    chex.assert_shape(z, (4, TINY3.z_dim))
    chex.assert_shape(levels, [(4, d) for d in TINY3.level_dims])
    full = self.variant(lambda p, z: model.apply(
        p, z, method=Generator.decode))(params, z)
    # Deepest first: level 2 (width 10), level 1 (12), level 0 (features).
    chex.assert_shape(full, [(4, 10), (4, 12), (4, TINY3.feature_dim)])
    chex.assert_trees_all_close(full[::-1], levels)
    for to_level in range(TINY3.num_levels):
      part = self.variant(lambda p, z, n=to_level: model.apply(
          p, z, n, method=Generator.decode))(params, z)
      assert len(part) == TINY3.num_levels - to_level
      chex.assert_trees_all_close(part, full[:len(part)])

  def test_decode_to_level_skips_shallower_layers(self):
    deep_only = {k: v for k, v in self.params.items() if k != 'dec_0'}
    out = self.model.apply({'params': deep_only}, jnp.ones((2, 3)), 1,
                           method=Generator.decode)
    chex.assert_shape(out, [(2, 10), (2, 12)])
    assert bool(jnp.all(out[1] >= 0))  # levels >= 1 are rectified

  @chex.variants(with_jit=True, without_jit=True)
  def test_sample_respects_classes_and_key(self):
    model, params = self.model, {'params': self.params}
    mask = jnp.array([False, True, False, True, False, False])
    sample = self.variant(lambda p, k, m: model.apply(
        p, k, m, 64, method=Generator.sample))
    classes, levels = sample(params, jax.random.key(5), mask)
    chex.assert_shape(classes, (64,))
    chex.assert_shape(levels, [(64, d) for d in TINY3.level_dims])
    assert set(np.asarray(classes).tolist()) == {1, 3}
    again = sample(params, jax.random.key(5), mask)
    chex.assert_trees_all_equal((classes, levels), again)
    other = sample(params, jax.random.key(6), mask)
    assert not np.allclose(levels[0], other[1][0])

  def test_sample_to_level_and_prior(self):
    mask = jnp.ones(6, bool)
    _, levels = self.model.apply({'params': self.params}, jax.random.key(0),
                                 mask, 7, 2, method=Generator.sample)
    chex.assert_shape(levels, [(7, 10)])
    mean, logvar = self.model.apply({'params': self.params},
                                    method=Generator.prior)
    chex.assert_shape([mean, logvar], (6, 3))
    # Both drawn from N(0, 1), as the reference's `normal_()`.
    assert float(jnp.std(logvar)) > 0.3 and float(jnp.std(mean)) > 0.3
    assert set(self.params) == set(generator_lib.layer_names(TINY3))
    assert 'bias' not in self.params['to_logvar']


def _reference_vae_parameter_count(arch) -> int:
  """Parameters of the reference's feature VAE (`models/vae.py` with
  internal replay), from the layer sizes as it builds them: the fc encoder
  over the hidden stack, the mean head (with bias) and log-variance head
  (`fc_layer_split`: no bias), `fromZ` (z -> last hidden size), the mirrored
  fc decoder down to level 0, and one prior mean and log-variance per class.
  The unused conv parts it also constructs are not counted."""
  sizes = [arch.feature_dim] + list(arch.hidden)
  dense = lambda a, b: a * b + b
  encoder = sum(dense(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
  heads = dense(sizes[-1], arch.z_dim) + sizes[-1] * arch.z_dim
  from_z = dense(arch.z_dim, sizes[-1])
  down = sizes[::-1]
  decoder = sum(dense(a, b) for a, b in zip(down[:-1], down[1:]))
  prior = 2 * arch.num_classes * arch.z_dim
  return encoder + heads + from_z + decoder + prior


@pytest.mark.parametrize('name,normaliser', [('arch1', 3072), ('arch2', 3072),
                                             ('fmnist', 784),
                                             ('fmnist_scripts', 784)])
def test_generator_is_the_reference_vae(name, normaliser):
  arch = arch_lib.PRESETS[name]
  params = jax.eval_shape(
      lambda k: continual.init_generator(arch, k), jax.random.key(0))
  count = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))
  assert count == _reference_vae_parameter_count(arch)
  assert arch.input_size == normaliser
  # `from_z` feeds the deepest level's layer; its output is no level.
  assert params['from_z']['kernel'].shape == (arch.z_dim, arch.hidden[-1])
  top = arch.num_levels - 1
  assert params[f'dec_{top}']['kernel'].shape == (
      arch.hidden[-1], arch.level_dims[top])
  if name == 'arch1':
    # By hand: 2,050,000 + 4,002,000 (encoder) + 200,100 + 200,000 (heads)
    # + 202,000 (from_z) + 4,002,000 + 2,049,024 (decoder) + 20,000 (prior).
    assert count == 12_725_124


def _torch_conv_transpose(x, kernel, bias, stride, padding):
  """PyTorch's ConvTranspose2d by its definition: `x[i, j] @ w[t, u]` is
  added to output `(stride * i + t - padding, stride * j + u - padding)`."""
  batch, height, width, _ = x.shape
  k = kernel.shape[0]
  full = np.zeros((batch, (height - 1) * stride + k,
                   (width - 1) * stride + k, kernel.shape[-1]))
  for i in range(height):
    for j in range(width):
      for t in range(k):
        for u in range(k):
          full[:, stride * i + t, stride * j + u] += x[:, i, j] @ kernel[t, u]
  out_h = (height - 1) * stride - 2 * padding + k
  out_w = (width - 1) * stride - 2 * padding + k
  return full[:, padding:padding + out_h, padding:padding + out_w] + bias


@pytest.mark.parametrize('kernel_size,stride,padding,size',
                         [(4, 2, 1, 7), (4, 2, 1, 3), (3, 1, 1, 5)])
def test_conv_transpose_is_pytorchs(kernel_size, stride, padding, size):
  """`layers.ConvTranspose` computes PyTorch's ConvTranspose2d (the
  reference's k4 s2 p1 and k3 s1 p1 decoder layers) and initialises as it
  does: uniform within 1/sqrt(out_channels * k * k)."""
  x = jax.random.normal(jax.random.key(0), (2, size, size + 1, 3))
  layer = layers.ConvTranspose(5, kernel_size, stride, padding)
  params = layer.init(jax.random.key(1), x)['params']
  bound = 1 / np.sqrt(5 * kernel_size**2)
  chex.assert_shape(params['kernel'], (kernel_size, kernel_size, 3, 5))
  for leaf in params.values():
    assert float(jnp.abs(leaf).max()) <= bound
    assert float(jnp.abs(leaf).max()) > 0.5 * bound
  out = layer.apply({'params': params}, x)
  chex.assert_shape(out, (2, size * stride, (size + 1) * stride, 5))
  expected = _torch_conv_transpose(
      np.asarray(x, np.float64), np.asarray(params['kernel'], np.float64),
      np.asarray(params['bias'], np.float64), stride, padding)
  np.testing.assert_allclose(out, expected, atol=1e-5)
  with pytest.raises(ValueError, match='kernel_size == stride'):
    layers.ConvTranspose(5, 3, 2, 1).init(jax.random.key(1), x)


def test_image_generator_is_the_references_conv_vae():
  """fmnist_scripts (the authors' Fashion-MNIST GR): convs 16-32-64 (the
  last linear), fc 3136 -> 100, z 10; decoder 10 -> 100 (from_z) -> 3136 ->
  ConvTranspose 64->32 (k4 s2), 32->16 (k4 s2), 16->1 (k3 s1), sigmoid."""
  arch = arch_lib.PRESETS['fmnist_scripts']
  params = jax.eval_shape(
      lambda k: continual.init_image_generator(arch, k), jax.random.key(0))
  shapes = jax.tree.map(lambda p: p.shape, params)
  assert shapes['from_z']['kernel'] == (10, 100)
  assert shapes['dec_0']['kernel'] == (100, 3136)
  assert shapes['enc_1']['kernel'] == (3136, 100)
  assert 'bias' not in shapes['to_logvar']
  deconv = shapes['conv_decoder']
  assert [deconv[f'deconv_{i}']['kernel'] for i in (1, 2, 3)] == [
      (4, 4, 64, 32), (4, 4, 32, 16), (3, 3, 16, 1)]
  assert not arch_lib.PRESETS['fmnist_scripts'].conv_last_relu
  model = image_generator.ImageGenerator(arch)
  params = continual.init_image_generator(arch, jax.random.key(0))
  images = jax.random.uniform(jax.random.key(1), (3, 28, 28, 1))
  _, _, _, (raw,) = model.apply({'params': params}, images,
                                jax.random.key(2))
  chex.assert_shape(raw, (3, 28, 28, 1))
  _, (samples,) = model.apply({'params': params}, jax.random.key(1),
                              jnp.ones(10, bool), 5,
                              method=image_generator.ImageGenerator.sample)
  assert 0 < float(samples.min()) and float(samples.max()) < 1


def test_image_generator_without_convolutions():
  """`fmnist_mlp`: the image VAE is fully connected; Bernoulli pixels by
  default, a linear last layer for standardised (possibly negative)
  pixels."""
  arch = arch_lib.PRESETS['fmnist_mlp']
  params = continual.init_image_generator(arch, jax.random.key(0))
  assert not any('conv' in name for name in params)
  for bernoulli in (True, False):
    _, (images,) = image_generator.ImageGenerator(arch, bernoulli).apply(
        {'params': params}, jax.random.key(1), jnp.ones(10, bool), 64,
        method=image_generator.ImageGenerator.sample)
    chex.assert_shape(images, (64, 28, 28, 1))
    if bernoulli:
      assert 0 < float(images.min()) and float(images.max()) < 1
    else:
      assert float(images.min()) < 0 < float(images.max())


class Bfloat16MatmulTest(chex.TestCase):
  """`--precision=BF16_BF16_F32` on XLA:CPU, which ignores dot algorithms:
  dense layers cast their operands to bfloat16 themselves."""

  def setUp(self):
    super().setUp()
    if jax.default_backend() != 'cpu':
      self.skipTest('the explicit casts are for XLA:CPU only; other '
                    'backends run the dot algorithm themselves')
    self.layers = layers
    keys = jax.random.split(jax.random.key(0), 3)
    self.x = jax.random.normal(keys[0], (64, 48))
    self.kernel = jax.random.normal(keys[1], (48, 40)) / 7
    self.g = jax.random.normal(keys[2], (64, 40))

  def _value_and_grads(self, fn):
    y, vjp = jax.vjp(fn, self.x, self.kernel)
    return (y,) + vjp(self.g)

  def test_float32_is_a_plain_matmul(self):
    assert not self.layers.casts_to_bfloat16()
    # Both compiled: the same program, so the same bits (eager and jitted
    # matmuls may split the work over threads differently).
    y, dx, dkernel = self._value_and_grads(jax.jit(self.layers.matmul))
    chex.assert_trees_all_equal(
        (y, dx, dkernel), self._value_and_grads(jax.jit(lambda x, k: x @ k)))

  def test_forward_and_both_gradients_take_bfloat16_operands(self):
    bf16, f32 = jnp.bfloat16, jnp.float32
    x16, kernel16, g16 = (a.astype(bf16) for a in (self.x, self.kernel,
                                                    self.g))
    expected = (
        jnp.dot(x16, kernel16, preferred_element_type=f32),
        jnp.dot(g16, kernel16.T, preferred_element_type=f32),
        jnp.dot(x16.T, g16, preferred_element_type=f32))
    exact = self._value_and_grads(lambda x, k: x @ k)
    with jax.default_matmul_precision(self.layers.BF16_ALGORITHM):
      assert self.layers.casts_to_bfloat16()
      got = self._value_and_grads(jax.jit(self.layers.matmul))
    chex.assert_trees_all_close(got, expected, rtol=1e-5, atol=1e-5)
    for ours, full in zip(got, exact):
      assert ours.dtype == jnp.float32
      error = float(jnp.abs(ours - full).max() / jnp.abs(full).max())
      assert 1e-5 < error < 2e-2, error  # bfloat16 rounding, no more

  def test_constant_rows_get_no_gradient(self):
    """`constant_rows`: the last rows' input gradient is zero, the others'
    and the kernel's are those of a plain matmul; also with bfloat16."""
    rows = 24
    plain = self._value_and_grads(lambda x, k: x @ k)
    for precision in ('float32', self.layers.BF16_ALGORITHM):
      with jax.default_matmul_precision(precision):
        y, dx, dkernel = self._value_and_grads(
            lambda x, k: self.layers.matmul(x, k, constant_rows=rows))
      tol = 1e-5 if precision == 'float32' else 3e-2
      chex.assert_trees_all_close((y, dx[:-rows]), (plain[0], plain[1][:-rows]),
                                  rtol=tol, atol=tol)
      assert float(jnp.abs(dx[-rows:]).max()) == 0.0
      # The kernel's gradient sees every row.
      chex.assert_trees_all_close(dkernel, plain[2], rtol=tol, atol=tol * 10)

  def test_leading_dimensions_and_vmap(self):
    with jax.default_matmul_precision(self.layers.BF16_ALGORITHM):
      flat = self.layers.matmul(self.x, self.kernel)
      chex.assert_trees_all_close(
          self.layers.matmul(self.x.reshape(4, 16, 48), self.kernel),
          flat.reshape(4, 16, 40))
      grad = jax.grad(lambda x, k: jnp.sum(self.layers.matmul(x, k) ** 2),
                      argnums=1)
      stacked = jax.vmap(grad)(jnp.stack([self.x, -self.x]),
                               jnp.stack([self.kernel, self.kernel]))
      chex.assert_trees_all_close(
          stacked[1], grad(-self.x, self.kernel), rtol=1e-5)

  @pytest.mark.skipif(not layers.cpu_bfloat16_instructions(),
                      reason='CPU without bfloat16 matmul instructions '
                      '(AMX or AVX512-BF16): whether XLA keeps bfloat16 dots '
                      'there is not what this test is about')
  def test_compiled_dots_stay_bfloat16(self):
    """XLA:CPU computes a bfloat16 dot in float32 when an operand is a
    folded transpose (then slower than float32); every dot of the layer's
    forward and backward must keep bfloat16 operands, vmapped too."""
    def loss(x, kernel):
      return jnp.sum(jnp.tanh(self.layers.matmul(x, kernel)))

    grad = jax.grad(loss, argnums=(0, 1))
    with jax.default_matmul_precision(self.layers.BF16_ALGORITHM):
      programs = [
          jax.jit(grad).lower(self.x, self.kernel).compile().as_text(),
          jax.jit(jax.vmap(grad)).lower(
              jnp.stack([self.x] * 3),
              jnp.stack([self.kernel] * 3)).compile().as_text()]
    for text in programs:
      dots = 0
      for block in text.split('\n\n'):
        types = dict(re.findall(r'%([\w.\-]+) = (\w+)\[', block))
        for lhs, rhs in re.findall(r' dot\(%([\w.\-]+), %([\w.\-]+)\)',
                                   block):
          dots += 1
          assert (types[lhs], types[rhs]) == ('bf16', 'bf16'), block
      assert dots == 3, text


# Inputs of more than 16 channels take the kernel gradient from patches too.
@pytest.mark.parametrize('size,channels,stride', [(8, 3, 1), (8, 4, 2),
                                                  (7, 5, 2), (4, 6, 2),
                                                  (6, 20, 1), (5, 24, 2)])
def test_conv_patch_gradients_equal_xlas(size, channels, stride):
  # The 'patches' backward changes how gradients are computed, never the
  # parameters or the forward pass; gradients agree to float rounding.
  x = jax.random.normal(jax.random.key(0), (3, size, size, channels))
  convs = {b: layers.Conv(6, stride, b) for b in layers.CONV_BACKWARDS}
  params = {b: conv.init(jax.random.key(1), x) for b, conv in convs.items()}
  chex.assert_trees_all_equal(params['xla'], params['patches'])
  outputs = {b: conv.apply(params['xla'], x) for b, conv in convs.items()}
  np.testing.assert_array_equal(outputs['xla'], outputs['patches'])
  chex.assert_shape(outputs['xla'], (3, (size - 1) // stride + 1,
                                     (size - 1) // stride + 1, 6))
  target = jax.random.normal(jax.random.key(2), outputs['xla'].shape)

  def loss(p, x, conv):
    return jnp.sum(jnp.tanh(conv.apply(p, x)) * target)
  grads = {b: jax.grad(loss, argnums=(0, 1))(params['xla'], x, conv)
           for b, conv in convs.items()}
  chex.assert_trees_all_close(grads['patches'], grads['xla'], rtol=1e-5,
                              atol=1e-5)


def test_conv_backward_is_checked():
  with pytest.raises(ValueError, match="conv backward must be one of"):
    layers.conv3x3(jnp.zeros((1, 4, 4, 1)), jnp.zeros((3, 3, 1, 1)), 1,
                   'fft')
