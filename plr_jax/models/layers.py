"""Layers initialised as PyTorch initialises them, as the reference code did.

PyTorch's `nn.Linear` and `nn.Conv2d` draw weights and biases from
uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)). Flax's defaults (LeCun normal, zero
bias) would also train, but matching the reference keeps the accuracy numbers
comparable.
"""

import functools

import jax
import jax.numpy as jnp
import flax.linen as nn
import numpy as np


def _uniform(bound: float):
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


# The dot algorithm `matmul` realises by hand where the backend ignores it.
BF16_ALGORITHM = 'BF16_BF16_F32'


def casts_to_bfloat16() -> bool:
  """Whether `matmul` casts its operands to bfloat16 itself.

  True where JAX's default matmul precision is `BF16_BF16_F32` (bfloat16
  operands, float32 accumulation) and the backend is XLA:CPU, which ignores
  dot algorithms and would compute in float32. GPUs honour the algorithm
  directly. Read at trace time; the precision is part of jit's cache key.
  """
  return (str(jax.config.jax_default_matmul_precision) == BF16_ALGORITHM
          and jax.default_backend() == 'cpu')


# /proc/cpuinfo flags of the instructions behind fast bfloat16 matmuls.
BFLOAT16_CPU_FLAGS = ('avx512_bf16', 'amx_bf16')


def cpu_bfloat16_instructions() -> tuple[str, ...]:
  """Which of `BFLOAT16_CPU_FLAGS` the host CPU has (Linux; () elsewhere)."""
  try:
    with open('/proc/cpuinfo') as fh:
      flags = set(fh.read().split())
  except OSError:
    return ()
  return tuple(f for f in BFLOAT16_CPU_FLAGS if f in flags)


def _row_major_transpose(a: jax.Array) -> jax.Array:
  """`a.T` for a matrix, as a copy in row-major layout.

  XLA folds a plain transpose into the dot's dimension numbers or gives it a
  column-major layout, and XLA:CPU then computes the bfloat16 dot in float32
  (benchmarks/RESULTS.md). Going through a third axis makes it copy the
  data.
  """
  return jnp.transpose(a[..., None], (1, 0, 2))[..., 0]


def _operands(x, kernel, bfloat16: bool):
  if bfloat16:
    return x.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16)
  return x, kernel


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _matmul(x: jax.Array, kernel: jax.Array, constant_rows: int,
            bfloat16: bool) -> jax.Array:
  """[B, K] x [K, N] with a hand-written VJP (see `matmul`)."""
  return jnp.dot(*_operands(x, kernel, bfloat16),
                 preferred_element_type=jnp.float32)


def _matmul_fwd(x, kernel, constant_rows, bfloat16):
  # Symbolic zeros: `perturbed` says whether an operand is differentiated,
  # so that the backward pass computes only the gradients that are used.
  x_value, kernel_value = _operands(x.value, kernel.value, bfloat16)
  y = jnp.dot(x_value, kernel_value, preferred_element_type=jnp.float32)
  return y, (x_value if kernel.perturbed else None,
             kernel_value if x.perturbed else None)


def _matmul_bwd(constant_rows, bfloat16, residuals, g):
  x_value, kernel_value = residuals
  if isinstance(g, jax.custom_derivatives.SymbolicZero):
    return None, None
  dtype = g.dtype
  if bfloat16:
    g = g.astype(jnp.bfloat16)
  dx = dkernel = None
  if kernel_value is not None:
    live = g.shape[0] - constant_rows
    dx = jax.lax.dot_general(g[:live], kernel_value, (((1,), (1,)), ((), ())),
                             preferred_element_type=jnp.float32)
    if constant_rows:
      dx = jnp.concatenate([dx, jnp.zeros((constant_rows, dx.shape[1]),
                                          dx.dtype)])
    dx = dx.astype(dtype)
  if x_value is not None:
    x_t = _row_major_transpose(x_value) if bfloat16 else x_value.T
    dkernel = jnp.dot(x_t, g, preferred_element_type=jnp.float32).astype(
        dtype)
  return dx, dkernel


_matmul.defvjp(_matmul_fwd, _matmul_bwd, symbolic_zeros=True)


def matmul(x: jax.Array, kernel: jax.Array, constant_rows: int = 0
           ) -> jax.Array:
  """`x @ kernel` ([..., K] x [K, N], one dtype) at JAX's default precision.

  Under `BF16_BF16_F32` on XLA:CPU the operands are cast to bfloat16 here,
  forward and backward (the two gradient matmuls also take bfloat16
  operands), with float32 accumulation: the arithmetic the algorithm asks
  for, which CPUs with AMX or AVX512-BF16 run several times faster than
  float32.

  Args:
    x: the inputs; with `constant_rows`, a matrix.
    kernel: the weights.
    constant_rows: the last rows of `x` are constants for autodiff (replayed
      features injected at a layer's input): their input gradient is zero
      and never computed, so a layer that runs over rows from below and
      injected rows in one matmul costs no more than over the former alone.

  Returns:
    `x @ kernel`, a plain matmul (XLA's autodiff) where neither option
    applies.
  """
  bfloat16 = casts_to_bfloat16()
  if not (bfloat16 or constant_rows):
    return x @ kernel
  if constant_rows and x.ndim != 2:
    raise ValueError(f'constant_rows needs a matrix, got shape {x.shape}')
  batch = x.shape[:-1]
  y = _matmul(x.reshape(-1, x.shape[-1]), kernel, constant_rows, bfloat16)
  return y.astype(x.dtype).reshape(*batch, kernel.shape[-1])


class Dense(nn.Module):
  """A fully connected layer with PyTorch's default initialisation."""
  features: int
  use_bias: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, constant_rows: int = 0) -> jax.Array:
    """`x @ kernel + bias`; `constant_rows` as for `matmul`."""
    fan_in = x.shape[-1]
    bound = 1.0 / np.sqrt(fan_in)
    kernel = self.param('kernel', _uniform(bound), (fan_in, self.features))
    y = matmul(x, kernel, constant_rows)
    if not self.use_bias:
      return y
    return y + self.param('bias', _uniform(bound), (self.features,))


CONV_BACKWARDS = ('xla', 'patches')


def _conv3x3(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
  """XLA's 3x3 convolution with padding 1, as `nn.Conv` computes it."""
  return jax.lax.conv_general_dilated(
      x, kernel, (stride, stride), ((1, 1), (1, 1)),
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def _patches3x3(x: jax.Array, stride: int) -> jax.Array:
  """[B, H', W', 9 C]: the 3x3 neighbourhood (padding 1) of every output
  position, taps in the kernel's (row, column, channel) order."""
  batch, height, width, channels = x.shape
  out_h, out_w = (height - 1) // stride + 1, (width - 1) // stride + 1
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  taps = [jax.lax.slice(padded, (0, i, j, 0),
                        (batch, i + stride * (out_h - 1) + 1,
                         j + stride * (out_w - 1) + 1, channels),
                        (1, stride, stride, 1))
          for i in range(3) for j in range(3)]
  return jnp.concatenate(taps, axis=-1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv3x3_patch_grads(x: jax.Array, kernel: jax.Array,
                         stride: int) -> jax.Array:
  return _conv3x3(x, kernel, stride)


def _conv3x3_patch_grads_fwd(x, kernel, stride):
  return _conv3x3(x, kernel, stride), (x, kernel)


# Inputs with at most this many channels get XLA's kernel gradient in the
# 'patches' backward: their patches are wide and shallow, and XLA's own
# kernel is the faster there (benchmarks/RESULTS.md, "Pretraining").
_XLA_KERNEL_GRAD_MAX_CHANNELS = 16


def _conv3x3_patch_grads_bwd(stride, residuals, g):
  x, kernel = residuals
  rows = 9 * x.shape[-1]
  g2 = g.reshape(-1, g.shape[-1])
  patches, to_input = jax.vjp(lambda x: _patches3x3(x, stride), x)
  if x.shape[-1] <= _XLA_KERNEL_GRAD_MAX_CHANNELS:
    dkernel = jax.vjp(lambda k: _conv3x3(x, k, stride), kernel)[1](g)[0]
  else:
    dkernel = (patches.reshape(-1, rows).T @ g2).reshape(kernel.shape)
  dpatches = (g2 @ kernel.reshape(rows, -1).T).reshape(patches.shape)
  return to_input(dpatches)[0], dkernel


_conv3x3_patch_grads.defvjp(_conv3x3_patch_grads_fwd,
                            _conv3x3_patch_grads_bwd)


def conv3x3(x: jax.Array, kernel: jax.Array, stride: int,
            backward: str = 'xla') -> jax.Array:
  """A 3x3 convolution with padding 1 (NHWC input, HWIO kernel).

  The forward pass is XLA's convolution either way. `backward` picks the
  gradients: 'xla' (XLA's transposed convolutions) or 'patches' (matmuls
  over the input's 3x3 patches: the input's gradient is g @ kernel^T
  scattered back onto the patches' positions, the kernel's patches^T @ g,
  or XLA's for inputs of at most 16 channels). They agree to float rounding;
  on XLA:CPU the patches form is the faster one (benchmarks/RESULTS.md,
  "Pretraining").
  """
  if backward == 'xla':
    return _conv3x3(x, kernel, stride)
  if backward == 'patches':
    return _conv3x3_patch_grads(x, kernel, stride)
  raise ValueError(f'conv backward must be one of {CONV_BACKWARDS}, got '
                   f'{backward!r}')


class _Conv3x3(nn.Module):
  """`nn.Conv(features, (3, 3), padding 1)`'s parameters and forward pass."""
  features: int
  stride: int
  backward: str
  bound: float

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', _uniform(self.bound),
                        (3, 3, x.shape[-1], self.features))
    bias = self.param('bias', _uniform(self.bound), (self.features,))
    return conv3x3(x, kernel, self.stride, self.backward) + bias


class Conv(nn.Module):
  """A 3x3 convolution, padding 1, with PyTorch's default initialisation.

  `backward` chooses how gradients are computed (`conv3x3`); parameters and
  outputs do not depend on it.
  """
  features: int
  stride: int = 1
  backward: str = 'xla'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    fan_in = 9 * x.shape[-1]
    return _Conv3x3(self.features, self.stride, self.backward,
                    1.0 / np.sqrt(fan_in), name='conv')(x)


def _phase_taps(kernel_size: int, stride: int,
                padding: int) -> tuple[np.ndarray, int]:
  """Which kernel tap feeds which output phase from which input offset.

  PyTorch's transposed convolution adds `x[i] @ w[t]` to output
  `stride * i + t - padding`. Writing the output index `stride * a + r`,
  phase r takes tap t from input `a + d` with `d = (r + padding - t) /
  stride` where that is an integer. Returns `select[r, d - lo, t]` = 1 for
  those triples, and `lo`, the smallest offset.
  """
  pairs = [(r, t, (r + padding - t) // stride)
           for r in range(stride) for t in range(kernel_size)
           if (r + padding - t) % stride == 0]
  lo = min(d for _, _, d in pairs)
  hi = max(d for _, _, d in pairs)
  select = np.zeros((stride, hi - lo + 1, kernel_size), np.float32)
  for r, t, d in pairs:
    select[r, d - lo, t] = 1.0
  return select, lo


class ConvTranspose(nn.Module):
  """PyTorch's `ConvTranspose2d(in, features, kernel_size, stride, padding)`:
  its outputs, and its initialisation (weights and bias uniform within
  1/sqrt(features * kernel_size**2), PyTorch's fan-in of that weight).

  The output is `stride` times the input in each spatial dimension, which
  needs `kernel_size == stride + 2 * padding` (the reference's k4 s2 p1 and
  k3 s1 p1 layers). Computed as one stride-1 convolution with
  `stride**2 * features` output channels followed by a depth-to-space
  shuffle ("sub-pixel" form): XLA:CPU computes the kernel gradient of the
  dilated convolution behind `lax.conv_transpose` very slowly
  (benchmarks/RESULTS.md); a plain convolution over the undilated input is
  fast on every backend.
  The kernel is [k, k, in, out] with `kernel[t, u] = torch_weight[:, :, t, u]`.
  """
  features: int
  kernel_size: int = 4
  stride: int = 2
  padding: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, s, out = self.kernel_size, self.stride, self.features
    if k != s + 2 * self.padding:
      raise ValueError(f'ConvTranspose needs kernel_size == stride + 2 * '
                       f'padding, got {k}, {s}, {self.padding}')
    bound = 1.0 / np.sqrt(out * k * k)
    kernel = self.param('kernel', _uniform(bound), (k, k, x.shape[-1], out))
    bias = self.param('bias', _uniform(bound), (out,))
    select, lo = _phase_taps(k, s, self.padding)
    size = select.shape[1]
    # [size, size, in, s (rows), s (cols), out]
    phases = jnp.einsum('rit,cju,tuoq->ijorcq', select, select, kernel)
    phases = phases.reshape(size, size, x.shape[-1], s * s * out)
    y = jax.lax.conv_general_dilated(
        x, phases, (1, 1), [(-lo, size - 1 + lo)] * 2,
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    batch, height, width, _ = y.shape
    y = y.reshape(batch, height, width, s, s, out)
    y = y.transpose(0, 1, 3, 2, 4, 5).reshape(batch, height * s, width * s,
                                              out)
    return y + bias


# Log-variances are clipped where they are exponentiated: an unbounded prior
# mode drifted to exp(logvar) = inf on Fashion-MNIST and made replay NaN.
LOGVAR_RANGE = (-20.0, 10.0)


def clip_logvar(logvar: jax.Array) -> jax.Array:
  """`logvar` clipped to `LOGVAR_RANGE` (a numerical guard, see above)."""
  return jnp.clip(logvar, *LOGVAR_RANGE)


def check_rows(x: jax.Array, shape: tuple[int, ...], what: str) -> None:
  """ValueError unless `x` is a batch of rows of `shape` ([B, *shape]),
  naming the expected and the given shape (shapes are static: this runs
  when a jitted function is traced, at no cost afterwards)."""
  if tuple(x.shape[1:]) != tuple(shape):
    raise ValueError(f'{what} must have shape [batch, '
                     f'{", ".join(map(str, shape))}], got '
                     f'{list(x.shape)}')
